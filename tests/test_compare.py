"""`rbl compare`: the original and its compressed copies side by side. The paired intervals match a literal resampling
of both runs' sample ids, the size/parameter/sparsity figures match direct counts, latency is there, bad input exits 2."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from foundation_helpers import assert_one_line_error, run_rbl
from safetensors.numpy import load_file
from test_plugins import imported_by

import robustbench_local as rbl
from robustbench_local.compare import compare_runs
from robustbench_local.model_catalog import BUILTIN_MODELS
from robustbench_local.progress import Progress
from robustbench_local.runner.store import RunStore
from robustbench_local.seeding import numpy_rng

SEED, N, B = 3, 30, 1000
LATENCY_REPS, LATENCY_BATCH = 2, 4
CORRUPTIONS = ("gaussian_noise", "fog")
SEVERITIES = (1, 3)


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """builtin:digits-cnn against its int8-static and 50%-pruned copies: clean and four corruption conditions."""
    root = tmp_path_factory.mktemp("compare")
    int8, pruned = root / "int8", root / "pruned50"
    for method, out, extra in (("int8-static", int8, ["--data", "builtin:digits", "--calibration-size", "64"]),
                               ("prune", pruned, ["--amount", "0.5"])):
        done = run_rbl("compress", "builtin:digits-cnn", "--method", method, "--out", str(out), *extra)
        assert done.exit_code == 0, done.stderr
    out = root / "cmp"
    done = run_rbl("compare", "builtin:digits-cnn", str(int8), str(pruned), "--data", "builtin:digits",
                   "--suite", "clean,corruptions", "--corruptions", ",".join(CORRUPTIONS),
                   "--severities", ",".join(map(str, SEVERITIES)), "--limit", str(N), "--seed", str(SEED),
                   "--latency-reps", str(LATENCY_REPS), "--latency-batch", str(LATENCY_BATCH), "--out", str(out))
    assert done.exit_code == 0, done.stderr
    return {"out": out, "stdout": done.stdout, "int8": int8, "pruned": pruned,
            "json": json.loads((out / "compare.json").read_text()), "csv": pd.read_csv(out / "compare.csv")}


def change(compared, model: str, suite: str, condition: str, metric: str) -> dict:
    (found,) = [c for c in compared["json"]["changes"] if (c["model"], c["suite"], c["condition"], c["metric"])
                == (model, suite, condition, metric)]
    return found


def records(run_dir, suite: str, condition: str) -> tuple[str, pd.DataFrame]:
    """(task key, per-sample records in sample-id order) of one task of a run."""
    store = RunStore(run_dir)
    (key,) = [k for k in store.task_keys() if (store.load_meta(k)["suite"], store.load_meta(k)["condition"])
              == (suite, condition)]
    return key, store.load_task(key)[1].table.sort_values("sample_id", kind="stable").reset_index(drop=True)


def draws(n: int, *seed_parts: Any) -> np.ndarray:
    """(B, n) positions: the documented resamples drawn literally (B blocks of n draws of Generator.integers)."""
    return numpy_rng("bootstrap", *seed_parts).integers(0, n, size=(B, n))


def test_terminal_table_and_files_show_every_headline_metric_per_model(compared):
    stdout, table = compared["stdout"], compared["csv"]
    for heading in ("clean", "corruptions", "models", "change int8 [95% CI]", "change pruned50 [95% CI]",
                    "latency ms/image, batch 1", f"latency ms/image, batch {LATENCY_BATCH}", "1 torch thread"):
        assert heading in stdout
    assert (compared["out"] / "compare.md").read_text().startswith("## Compressed models side by side")
    metrics = table[table.section != "model"]
    assert set(metrics.model) == {"int8", "pruned50"}
    for model in ("int8", "pruned50"):
        rows = metrics[metrics.model == model]
        assert {"acc", "nll", "ece_15_equal_width"} <= set(rows[rows.section == "clean"].metric)
        assert {"mean_corruption_acc", "mean_corruption_error"} <= set(rows[rows.section == "corruptions"].metric)
        assert (rows.ci_low <= rows.change + 1e-12).all() and (rows.change <= rows.ci_high + 1e-12).all()
        assert np.allclose(rows.change, rows.value - rows.original)
    run = rbl.load_run(compared["out"] / "builtin_digits-cnn")
    assert change(compared, "int8", "clean", "clean", "acc")["original"] == pytest.approx(run.metric("acc", "clean"))


def test_clean_changes_are_paired_like_a_literal_resampling_of_both_runs(compared):
    out = compared["out"]
    key, base = records(out / "builtin_digits-cnn", "clean", "clean")
    idx = draws(N, SEED, key)
    for model in ("int8", "pruned50"):
        _, cand = records(out / model, "clean", "clean")
        assert base.sample_id.equals(cand.sample_id)
        for metric, column in (("acc", "correct"), ("nll", "nll")):
            b, c = base[column].to_numpy(float), cand[column].to_numpy(float)
            found = change(compared, model, "clean", "clean", metric)
            assert found["change"] == pytest.approx(c.mean() - b.mean(), abs=1e-9)
            literal = np.percentile(c[idx].mean(axis=1) - b[idx].mean(axis=1), [2.5, 97.5])
            assert (found["ci_low"], found["ci_high"]) == pytest.approx(literal, abs=1e-6)


def test_mean_corruption_accuracy_change_is_paired_like_a_literal_resampling(compared):
    """One resample of the sample ids weighs every corruption condition of both runs."""
    out = compared["out"]
    idx = draws(N, SEED, "corruptions-summary")

    def accuracy(run_dir) -> tuple[float, np.ndarray]:
        correct = np.stack([records(run_dir, "corruptions", f"{c}/{s}")[1].correct.to_numpy(float)
                            for c in CORRUPTIONS for s in SEVERITIES])  # (conditions, N), ids in order
        return correct.mean(), correct[:, idx].mean(axis=(0, 2))

    base, base_draws = accuracy(out / "builtin_digits-cnn")
    for model in ("int8", "pruned50"):
        cand, cand_draws = accuracy(out / model)
        found = change(compared, model, "corruptions", "common", "mean_corruption_acc")
        assert found["change"] == pytest.approx(cand - base, abs=1e-12)
        assert (found["ci_low"], found["ci_high"]) == pytest.approx(
            np.percentile(cand_draws - base_draws, [2.5, 97.5]), abs=1e-9)


def test_size_parameters_and_sparsity_match_direct_counts(compared):
    models = {m["name"]: m for m in compared["json"]["models"]}
    shipped = BUILTIN_MODELS["digits-cnn"].weights  # the same state dict, written as safetensors
    weights = load_file(str(shipped))
    buffers = ("running_mean", "running_var", "num_batches_tracked")  # batch-norm statistics are no parameters
    parameters = sum(w.size for k, w in weights.items() if not k.endswith(buffers))
    assert models["builtin_digits-cnn"]["size_bytes"] == shipped.stat().st_size
    assert models["int8"]["size_bytes"] == (compared["int8"] / "model.ts").stat().st_size
    assert models["pruned50"]["size_bytes"] == (compared["pruned"] / "model.safetensors").stat().st_size
    assert {m["parameters"] for m in models.values()} == {parameters}
    pruned = load_file(str(compared["pruned"] / "model.safetensors"))
    layer_weights = [w for k, w in pruned.items() if k.endswith(".weight") and w.ndim in (2, 4)]  # conv and linear
    zeros = sum(int((w == 0).sum()) for w in layer_weights) / sum(w.size for w in layer_weights)
    assert models["pruned50"]["sparsity"] == pytest.approx(zeros) == pytest.approx(0.5, abs=1e-4)
    assert models["int8"]["sparsity"] == models["builtin_digits-cnn"]["sparsity"] == 0.0


def test_latency_is_measured_for_every_model_and_batch_size(compared):
    latency = compared["json"]["latency"]
    assert (latency["threads"], latency["repetitions"]) == (1, LATENCY_REPS)
    got = {(r["model"], r["batch_size"]): r for r in latency["results"]}
    assert set(got) == {(m, b) for m in ("builtin_digits-cnn", "int8", "pruned50") for b in (1, LATENCY_BATCH)}
    for row in got.values():
        assert row["ms_per_image"] > 0 and len(row["samples"]) == LATENCY_REPS
        assert row["ms_per_image"] == pytest.approx(np.median(row["samples"]))
    csv = compared["csv"]
    assert (csv[csv.metric == "latency_ms_per_image"].value > 0).sum() == 6


def test_comparing_the_run_directories_gives_the_same_changes(compared, tmp_path):
    out = compared["out"]
    comparison = compare_runs([str(out / n) for n in ("builtin_digits-cnn", "int8", "pruned50")], Progress(True))
    assert [(c.model, c.suite, c.condition, c.metric, c.change, c.ci_low, c.ci_high) for c in comparison.changes] \
        == [(c["model"], c["suite"], c["condition"], c["metric"], c["change"], c["ci_low"], c["ci_high"])
            for c in compared["json"]["changes"]]
    done = run_rbl("compare", "--runs", str(out / "builtin_digits-cnn"), str(out / "int8"), "--out", str(tmp_path))
    assert done.exit_code == 0 and "change int8 [95% CI]" in done.stdout and "latency" not in done.stdout


@pytest.fixture(scope="module")
def other_runs(compared, tmp_path_factory):
    """Clean runs of the original on fewer samples, and with another seed."""
    root = tmp_path_factory.mktemp("other")
    return {"fewer": rbl.evaluate("builtin:digits-cnn", "builtin:digits", ["clean"], out=root / "fewer", limit=N - 10,
                                  seed=SEED).root,
            "seed": rbl.evaluate("builtin:digits-cnn", "builtin:digits", ["clean"], out=root / "seed", limit=N,
                                 seed=SEED + 1).root}


@pytest.mark.parametrize("args,needles", [
    (["builtin:digits-cnn", "--data", "builtin:digits"], ["the original and at least one compressed model"]),
    (["builtin:digits-cnn", "builtin:digits-cnn?prune=0.5"], ["give --data"]),
    (["builtin:digits-cnn", "no/such/model", "--data", "builtin:digits"], ["no/such/model"]),
    (["builtin:digits-cnn", "builtin:digits-cnn", "--data", "builtin:nope"], ["data set 'nope'"]),
    (["builtin:digits-cnn", "builtin:digits-cnn?num_classes=5&weights=none", "--data", "builtin:digits"],
     ["different class counts", "num_classes=5_weights=none: 5"]),
    (["--runs", "a", "b", "--data", "builtin:digits"], ["--runs compares finished runs", "--data"]),
    (["--runs", "a", "b", "--eps", "0.1"], ["--runs compares finished runs", "--eps"]),
    (["--runs", "not/a/run", "not/a/run"], ["not a finished run directory"]),
])
def test_bad_input_is_one_line_and_exit_2(args, needles, tmp_path):
    out = tmp_path / "out"
    assert_one_line_error(run_rbl("compare", *args, "--out", str(out)), *needles)
    assert not any(out.glob("*/tasks"))  # nothing was evaluated


@pytest.mark.parametrize("other,needles", [("fewer", ["differ in data fingerprint"]), ("seed", ["different seeds"])])
def test_incompatible_runs_are_refused(compared, other_runs, other, needles, tmp_path):
    outcome = run_rbl("compare", "--runs", str(compared["out"] / "builtin_digits-cnn"), str(other_runs[other]),
                      "--out", str(tmp_path))
    assert_one_line_error(outcome, *needles)


def test_compare_help_imports_no_heavy_library():
    assert imported_by("compare", "--help") == set()

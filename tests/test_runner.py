"""Runner: public API, run directory contents, resume after interruption, reproducibility, YAML specs."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch
import toy_suite
from click.testing import CliRunner

import robustbench_local as rbl
from robustbench_local import registry
from robustbench_local.cli import cli
from robustbench_local.errors import RunError, SpecError
from robustbench_local.models import Classifier
from robustbench_local.runner import EvalSpec

METRIC_COLUMNS = {"model", "dataset", "suite", "condition", "metric", "value", "ci_low", "ci_high", "n"}
RECORD_COLUMNS = {"model", "suite", "condition", "sample_id", "label", "pred", "confidence", "correct", "nll"}


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(registry.SUITES.added, "toy", toy_suite.ENTRY)
    toy_suite.SUITE.calls.clear()
    toy_suite.SUITE.interrupt_at = None
    yield toy_suite.SUITE
    toy_suite.SUITE.interrupt_at = None


class ConstantLogits(torch.nn.Module):
    """The same logits for every image: no information about the labels."""

    def __init__(self) -> None:
        super().__init__()
        self.logits = torch.nn.Parameter(torch.linspace(0, 2, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(len(x), -1)


def test_a_temperature_set_by_the_search_bound_is_flagged(tmp_path, capsys):
    """A model that ignores its input: the NLL falls all the way to T = 100, which says nothing about calibration."""
    constant = Classifier(ConstantLogits(), 10, mean=(0.0,), std=(1.0,), name="constant")
    run = rbl.evaluate(constant, "builtin:digits", out=tmp_path / "c", limit=30, quiet=False)
    flag = run.metrics.set_index("metric").loc["flag_temperature_at_bound"]
    assert flag.suite == "calibration" and flag.value == 1.0
    assert run.metrics.set_index("metric").value["temperature"] == pytest.approx(100, rel=1e-3)
    assert "is set by the search bound 100, not by the data (the logits say next to nothing" in capsys.readouterr().err
    assert json.loads((tmp_path / "c" / "calibration.json").read_text())["at_bound"] == 100
    good = rbl.evaluate("builtin:digits-cnn", "builtin:digits", out=tmp_path / "g", limit=30)
    assert good.metrics.set_index("metric").value["flag_temperature_at_bound"] == 0.0


def test_evaluate_api_writes_the_run_dir(tmp_path, digits_model):
    run = rbl.evaluate("builtin:digits-cnn", "builtin:digits", out=tmp_path / "run", limit=120)
    assert METRIC_COLUMNS <= set(run.metrics.columns)
    assert RECORD_COLUMNS <= set(run.records.columns)
    for name in ("metrics.csv", "metrics.json", "manifest.json", "calibration.json"):
        assert (tmp_path / "run" / name).is_file()
    manifest = run.manifest
    assert manifest["seed"] == 0 and manifest["n_samples"] == 120
    assert manifest["versions"]["torch"] and manifest["model_fingerprint"] == digits_model.fingerprint
    assert len(json.loads((tmp_path / "run" / "metrics.json").read_text())) == len(run.metrics)
    assert run.metric("acc", "clean") == pytest.approx(run.records.correct.mean())
    assert run.metric("acc", "clean") >= 0.95
    loaded = rbl.load_run(tmp_path / "run")
    pd.testing.assert_frame_equal(loaded.metrics, run.metrics)


def test_every_metric_has_n_and_an_interval(tmp_path):
    m = rbl.evaluate("builtin:digits-cnn", "builtin:digits", out=tmp_path, limit=100).metrics
    clean = m[m.suite == "clean"]
    assert {"acc", "ece_15_equal_width", "ece_15_equal_width_ts", "ece_15_equal_mass", "mce", "classwise_ece",
            "brier_sum", "nll", "nll_ts", "brier_sum_ts"} <= set(clean.metric)
    stratified = clean.metric.str.startswith("conformal_coverage_size")  # n: the samples whose sets have that size
    assert (clean.n[~stratified] == 100).all() and clean.n[stratified & clean.metric.str.endswith("_90")].sum() == 100
    valued = clean[clean.value.notna()]  # NaN: an empty set-size stratum
    assert (valued.ci_low <= valued.value + 1e-12).all() and (valued.value <= valued.ci_high + 1e-12).all()


def test_sampleset_and_classifier_objects(tmp_path, digits_model, digits_test):
    val = rbl.load_data("builtin:digits", "val")
    run = rbl.evaluate(digits_model, digits_test.limit(50), out=tmp_path, calibration_data=val)
    assert run.metric("temperature", "calibration") > 0
    assert len(run.records) == 50


@pytest.mark.numerics
def test_interrupted_run_resumes_with_identical_metrics(tmp_path, toy):
    args = ["--quiet", "evaluate", "builtin:digits-cnn", "--data", "builtin:digits", "--suite", "clean,toy",
            "--limit", "80"]
    full = CliRunner().invoke(cli, args + ["--out", str(tmp_path / "full")])
    assert full.exit_code == 0, full.output
    toy.calls.clear()
    toy.interrupt_at = "noise:2.0"
    killed = CliRunner().invoke(cli, args + ["--out", str(tmp_path / "resumed")])
    assert killed.exit_code == 130 and "resume" in killed.output
    assert toy.calls == ["noise:0.5", "noise:1.0"]
    assert not (tmp_path / "resumed" / "metrics.csv").exists()
    toy.interrupt_at, toy.calls[:] = None, []
    resumed = CliRunner().invoke(cli, args + ["--out", str(tmp_path / "resumed")])
    assert resumed.exit_code == 0, resumed.output
    assert toy.calls == ["noise:2.0", "noise:4.0"]  # finished tasks are not recomputed
    a = pd.read_csv(tmp_path / "full" / "metrics.csv")
    b = pd.read_csv(tmp_path / "resumed" / "metrics.csv")
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.numerics
def test_same_seed_same_numbers_whatever_the_batch_size(tmp_path, toy):
    a = rbl.evaluate("builtin:digits-cnn", "builtin:digits", ["clean", "toy"], out=tmp_path / "a", limit=90,
                     batch_size=256)
    b = rbl.evaluate("builtin:digits-cnn", "builtin:digits", ["clean", "toy"], out=tmp_path / "b", limit=90,
                     batch_size=7)
    c = rbl.evaluate("builtin:digits-cnn", "builtin:digits", ["clean", "toy"], out=tmp_path / "c", limit=90,
                     seed=1)
    key = ["suite", "condition", "metric"]
    ma, mb, mc = (r.metrics.sort_values(key).reset_index(drop=True) for r in (a, b, c))
    np.testing.assert_allclose(ma.value, mb.value, rtol=1e-5, atol=1e-6)
    assert (a.records.pred.to_numpy() == b.records.pred.to_numpy()).all()
    toy_rows = ma.suite == "toy"
    assert not np.allclose(ma.value[toy_rows], mc.value[toy_rows])


def test_run_dir_of_another_model_is_refused(tmp_path):
    rbl.evaluate("builtin:digits-cnn", "builtin:digits", out=tmp_path, limit=30)
    with pytest.raises(RunError, match="different model fingerprint"):
        rbl.evaluate("builtin:digits-cnn?weights=none", "builtin:digits", out=tmp_path, limit=30)


def test_yaml_config_and_flag_override(tmp_path, toy):
    config = tmp_path / "eval.yaml"
    config.write_text("model: builtin:digits-cnn\ndata: builtin:digits\nsuites: clean,toy\nlimit: 40\n"
                      "options:\n  scales: '1,3'\n")
    result = CliRunner().invoke(cli, ["--quiet", "evaluate", "--config", str(config), "--limit", "30",
                                      "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    run = rbl.load_run(tmp_path / "run")
    assert run.manifest["n_samples"] == 30
    assert set(run.metrics[run.metrics.suite == "toy"].condition) == {"noise:1.0", "noise:3.0"}


def test_options_of_unselected_suites_are_refused(tmp_path, toy):
    with pytest.raises(SpecError, match="belong to no selected suite"):
        rbl.evaluate("builtin:digits-cnn", "builtin:digits", ["clean"], out=tmp_path, scales="1")


def test_bad_yaml_keys_are_named(tmp_path):
    config = tmp_path / "eval.yaml"
    config.write_text("model: builtin:digits-cnn\ndata: builtin:digits\nsuits: clean\n")
    with pytest.raises(SpecError, match="unknown key.*suits"):
        EvalSpec.from_yaml(config)


@pytest.mark.parametrize("args, message", [
    (["--suite", "nosuch"], "unknown suite 'nosuch'"),
    (["--config", "missing.yaml"], "config file missing.yaml does not exist"),
    (["--nosuch-flag", "1"], "No such option '--nosuch-flag'"),
    (["--limit", "0"], "Invalid value for '--limit'"),
])
def test_cli_misuse_is_one_line_and_exit_2(tmp_path, toy, args, message):
    result = CliRunner().invoke(cli, ["evaluate", "builtin:digits-cnn", "--data", "builtin:digits",
                                      "--out", str(tmp_path / "x"), *args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.output


def test_metric_asks_for_the_condition_when_a_suite_has_several(tmp_path):
    rows = [("clean", "clean", "acc", 0.9), ("attacks", "pgd:Linf:0", "robust_acc", 0.9),
            ("attacks", "pgd:Linf:8/255", "robust_acc", 0.2), ("corruptions", "fog/1", "acc", 0.7)]
    pd.DataFrame(rows, columns=["suite", "condition", "metric", "value"]).to_csv(tmp_path / "metrics.csv", index=False)
    run = rbl.results.RunResult(tmp_path)
    assert run.metric("robust_acc", "attacks", "pgd:Linf:8/255") == 0.2
    assert run.metric("acc", "clean") == 0.9
    with pytest.raises(SpecError, match=re.escape("2 values of 'robust_acc'; pass the condition, one of: "
                                                  "'pgd:Linf:0', 'pgd:Linf:8/255'")):
        run.metric("robust_acc", "attacks")
    with pytest.raises(SpecError, match=re.escape("pass the suite and condition, one of: clean/clean, "
                                                  "corruptions/fog/1")):
        run.metric("acc")
    with pytest.raises(KeyError, match="no metric"):
        run.metric("robust_acc", "attacks", "pgd:Linf:1/255")

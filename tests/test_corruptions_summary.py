"""Paired-bootstrap intervals of the corruption summary, against literal resampling of sample ids in plain numpy."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from robustbench_local.corruptions.mce import ALEXNET_CLEAN_ERR, ALEXNET_ERR
from robustbench_local.corruptions.names import COMMON
from robustbench_local.corruptions.summary import SUMMARY_KEY, paired_rows, summary_rows
from scipy.special import softmax

from robustbench_local import evaluate, load_data
from robustbench_local.metrics import predictions, resample_weights
from robustbench_local.records import classification_records
from robustbench_local.runner.store import RunStore

SEED, N, B = 7, 20, 1000
IDS = np.array([107, 3, 55, 21, 8, 90, 64, 12, 33, 71, 5, 48, 99, 16, 27, 84, 60, 39, 2, 77])


def resampled_indices() -> list[np.ndarray]:
    """Resample b as a list of positions into the ids sorted ascending (each position repeated by its count)."""
    w = np.concatenate(list(resample_weights(N, B, SEED, SUMMARY_KEY))).astype(int)
    return [np.repeat(np.arange(N), counts) for counts in w]


def condition(name: str, params: dict, correct_rate: float, rng: np.random.Generator) -> tuple[list[dict], dict]:
    """A condition's metric rows (acc with paired replicates) over the ids in a shuffled order, and its sample
    correctness keyed by id (the oracle's input)."""
    labels = rng.integers(0, 3, N)
    correct = rng.random(N) < correct_rate
    logits = rng.normal(size=(N, 3))
    logits[np.arange(N), np.where(correct, labels, (labels + 1) % 3)] += 10
    order = rng.permutation(N)  # each condition stores its samples in another order
    records = classification_records(logits[order], labels[order], IDS[order])
    row = {"metric": "acc", "value": float(correct.mean()), "n": N}
    rows = paired_rows([row], records, predictions(records.logits, records.table.label.to_numpy(), None), SEED)
    return [{**r, "condition": name, "params": json.dumps(params)} for r in rows], dict(zip(IDS, correct))


def by_sorted_id(correct: dict) -> np.ndarray:
    return np.array([correct[i] for i in np.sort(IDS)], float)


def percentiles(values: list[float]) -> tuple[float, float]:
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


@pytest.fixture(scope="module")
def full_grid():
    """Clean plus the 15 common corruptions x 5 severities, plus one validation corruption."""
    rng = np.random.default_rng(0)
    rows, correct = [], {}
    r, correct["clean"] = condition("clean", {"severity": 0}, 0.9, rng)
    rows += r
    for c in COMMON:
        for s in range(1, 6):
            r, correct[c, s] = condition(f"{c}/{s}", {"corruption": c, "severity": s}, 0.9 - 0.1 * s, rng)
            rows += r
    r, correct["saturate", 1] = condition("saturate/1", {"corruption": "saturate", "severity": 1}, 0.5, rng)
    rows += r
    frame = pd.DataFrame(rows)
    out = pd.DataFrame(summary_rows(frame)).set_index(["condition", "metric"])
    return frame, {k: by_sorted_id(v) for k, v in correct.items()}, out


def test_mean_accuracy_interval_equals_literal_resampling(full_grid):
    _, correct, out = full_grid
    common = np.stack([correct[c, s] for c in COMMON for s in range(1, 6)])  # (75, N), ids sorted
    draws = [common[:, idx].mean() for idx in resampled_indices()]
    assert (out.ci_low["common", "mean_corruption_acc"], out.ci_high["common", "mean_corruption_acc"]) == \
        pytest.approx(percentiles(draws), abs=1e-12)
    assert (out.ci_low["common", "mean_corruption_error"], out.ci_high["common", "mean_corruption_error"]) == \
        pytest.approx(percentiles([1 - d for d in draws]), abs=1e-12)
    sev5 = np.stack([correct[c, 5] for c in COMMON])
    expected = percentiles([sev5[:, idx].mean() for idx in resampled_indices()])
    assert (out.ci_low["severity=5", "mean_corruption_acc"], out.ci_high["severity=5", "mean_corruption_acc"]) == \
        pytest.approx(expected, abs=1e-12)
    validation = percentiles([correct["saturate", 1][idx].mean() for idx in resampled_indices()])
    assert (out.ci_low["validation", "mean_corruption_acc"], out.ci_high["validation", "mean_corruption_acc"]) == \
        pytest.approx(validation, abs=1e-12)


def test_ce_and_mce_intervals_equal_literal_resampling(full_grid):
    _, correct, out = full_grid
    ce, rce = {c: [] for c in COMMON}, {c: [] for c in COMMON}
    for idx in resampled_indices():
        clean_err = 1 - correct["clean"][idx].mean()
        for c in COMMON:
            err = [1 - correct[c, s][idx].mean() for s in range(1, 6)]
            ce[c].append(sum(err) / sum(ALEXNET_ERR[c]))
            rce[c].append(sum(e - clean_err for e in err) / sum(a - ALEXNET_CLEAN_ERR for a in ALEXNET_ERR[c]))
    for name, draws in (("ce_alexnet", ce["fog"]), ("relative_ce_alexnet", rce["fog"])):
        assert (out.ci_low["fog", name], out.ci_high["fog", name]) == pytest.approx(percentiles(draws), abs=1e-12)
    mce = np.mean([ce[c] for c in COMMON], axis=0)
    rmce = np.mean([rce[c] for c in COMMON], axis=0)
    assert (out.ci_low["common", "mce_alexnet"], out.ci_high["common", "mce_alexnet"]) == \
        pytest.approx(percentiles(mce), abs=1e-12)
    assert (out.ci_low["common", "relative_mce_alexnet"], out.ci_high["common", "relative_mce_alexnet"]) == \
        pytest.approx(percentiles(rmce), abs=1e-12)
    assert out.ci_low["common", "mce_alexnet"] < out.value["common", "mce_alexnet"] < out.ci_high["common", "mce_alexnet"]


def test_point_estimates_are_the_per_condition_formulas_exactly(full_grid):
    frame, _, out = full_grid
    acc = {row.condition: row.value for row in frame.itertuples()}
    common = pd.Series([acc[f"{c}/{s}"] for c in COMMON for s in range(1, 6)])
    assert out.value["common", "mean_corruption_acc"] == common.mean()
    assert out.value["common", "mean_corruption_error"] == 1 - common.mean()
    clean_err = 1 - acc["clean"]
    ce = [float(np.sum([1 - acc[f"{c}/{s}"] for s in range(1, 6)]) / np.sum(ALEXNET_ERR[c])) for c in COMMON]
    rce = [float(np.sum(np.asarray([1 - acc[f"{c}/{s}"] for s in range(1, 6)]) - clean_err)
                 / np.sum(np.asarray(ALEXNET_ERR[c]) - ALEXNET_CLEAN_ERR)) for c in COMMON]
    assert out.value["fog", "ce_alexnet"] == ce[COMMON.index("fog")]
    assert out.value["common", "mce_alexnet"] == float(np.mean(ce))
    assert out.value["common", "relative_mce_alexnet"] == float(np.mean(rce))
    assert out.n["common", "mce_alexnet"] == 75 * N


def test_no_interval_without_replicates_or_with_different_ids(full_grid):
    frame, _, _ = full_grid
    old_cache = frame.drop(columns=["paired", "paired_ids"])
    out = pd.DataFrame(summary_rows(old_cache)).set_index(["condition", "metric"])
    assert out.ci_low.isna().all() and not out.value.isna().any()
    other_ids = frame.copy()
    other_ids.loc[other_ids.condition == "fog/3", "paired_ids"] = "another id set"
    out = pd.DataFrame(summary_rows(other_ids)).set_index(["condition", "metric"])
    assert np.isnan(out.ci_low["fog", "ce_alexnet"]) and np.isnan(out.ci_low["common", "mce_alexnet"])
    assert np.isnan(out.ci_low["common", "mean_corruption_acc"]) and not np.isnan(out.ci_low["frost", "ce_alexnet"])



def ece_15(correct: np.ndarray, confidence: np.ndarray) -> float:
    bins = np.minimum((confidence * 15).astype(int), 14)
    return sum(abs((correct[bins == b] - confidence[bins == b]).sum()) for b in range(15)) / len(correct)


def test_a_run_reports_paired_intervals_for_its_summary(digits_model, digits_test, tmp_path):
    data = digits_test.limit(N)
    run = evaluate(digits_model, data, suites=["corruptions"], out=tmp_path / "run", seed=SEED,
                   calibration_data=load_data("builtin:digits", "val"), corruptions="contrast,gaussian_noise",
                   severities="4,5")
    store = RunStore(run.root)
    temperature = store.read_json("calibration.json")["temperature"]
    tasks = [store.load_task(k)[1] for k in store.task_keys()]
    columns = {}
    for records in tasks:
        t = records.table.sort_values("sample_id")
        probs = softmax(records.logits[t.index].astype(np.float64) / temperature, axis=1)
        columns[int(t.severity.iloc[0]), str(t.corruption.iloc[0])] = (
            t.correct.to_numpy(float), probs.max(axis=1), t.sample_id.to_numpy())
    assert all(np.array_equal(v[2], np.sort(data.ids)) for v in columns.values())
    m = run.metrics.set_index(["condition", "metric"])
    corrupted = [v for (s, c), v in columns.items() if s > 0]
    sev5 = [v for (s, c), v in columns.items() if s == 5]
    acc, ece_ts = [], []
    for idx in resampled_indices():
        acc.append(np.mean([a[idx].mean() for a, _, _ in corrupted]))
        ece_ts.append(np.mean([ece_15(a[idx], conf[idx]) for a, conf, _ in sev5]))
    assert (m.ci_low["common", "mean_corruption_acc"], m.ci_high["common", "mean_corruption_acc"]) == \
        pytest.approx(percentiles(acc), abs=1e-12)
    assert (m.ci_low["severity=5", "mean_ece_15_equal_width_ts"], m.ci_high["severity=5", "mean_ece_15_equal_width_ts"]) \
        == pytest.approx(percentiles(ece_ts), abs=1e-9)
    assert m.value["common", "mean_corruption_acc"] == pytest.approx(np.mean([a.mean() for a, _, _ in corrupted]))
    assert {"paired", "paired_ids"}.isdisjoint(run.metrics.columns)


def test_a_metrics_cache_from_before_paired_replicates_is_recomputed(digits_model, digits_test, tmp_path):
    from robustbench_local.runner.execute import aggregate

    run = evaluate(digits_model, digits_test.limit(12), suites=["corruptions"], out=tmp_path / "run",
                   calibration_data=None, corruptions="fog", severities="1")
    before = run.metrics.set_index(["condition", "metric"])
    for path in (run.root / "metrics").glob("*.json"):
        cached = json.loads(path.read_text())
        rows = [{k: v for k, v in r.items() if not k.startswith("paired")} for r in cached["rows"]]
        path.write_text(json.dumps({"temperature": cached["temperature"], "rows": rows}))
    after = aggregate(RunStore(run.root)).set_index(["condition", "metric"])
    assert after.ci_low["common", "mean_corruption_acc"] == before.ci_low["common", "mean_corruption_acc"]
    assert not np.isnan(after.ci_low["common", "mean_corruption_acc"])

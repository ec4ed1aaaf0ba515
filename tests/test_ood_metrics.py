"""OOD metrics against scikit-learn on the same arrays (ties included) and the bootstrap against resampled data."""
from __future__ import annotations

import numpy as np
import pytest
from robustbench_local.ood import metrics as M
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from robustbench_local.errors import DataError
from robustbench_local.metrics import resample_indices


def sklearn_oracle(score: np.ndarray, is_ood: np.ndarray) -> dict[str, float]:
    is_id = ~is_ood
    p_out, r_out, _ = precision_recall_curve(is_ood, score)
    p_in, r_in, _ = precision_recall_curve(is_id, -score)
    fpr, tpr, _ = roc_curve(is_ood, score, drop_intermediate=False)
    fpr_id, tpr_id, _ = roc_curve(is_id, -score, drop_intermediate=False)
    return {
        "auroc": roc_auc_score(is_ood, score),
        "aupr_out": auc(r_out, p_out),
        "aupr_in": auc(r_in, p_in),
        "ap_out": average_precision_score(is_ood, score),
        "ap_in": average_precision_score(is_id, -score),
        "fpr_at_95tpr_ood": fpr[np.searchsorted(tpr, 0.95, side="left")],
        "fpr_at_95tpr_id": fpr_id[np.searchsorted(tpr_id, 0.95, side="left")],
        "detection_error": 0.5 * np.min(fpr + 1 - tpr),
    }


def cases():
    rng = np.random.default_rng(0)
    yield "gaussian", np.r_[rng.normal(0, 1, 300), rng.normal(1, 1, 120)], np.r_[np.zeros(300), np.ones(120)]
    ties = rng.integers(0, 6, 400).astype(float)
    yield "ties", ties + (rng.random(400) < 0.3), rng.random(400) < 0.3
    yield "separated", np.r_[np.arange(50.0), 100 + np.arange(20.0)], np.r_[np.zeros(50), np.ones(20)]
    yield "inverted", np.r_[100 + np.arange(30.0), np.arange(40.0)], np.r_[np.zeros(30), np.ones(40)]
    yield "all-tied", np.zeros(60), np.r_[np.zeros(45), np.ones(15)]
    close = np.r_[rng.normal(40, 1e-3, 200), rng.normal(40.0005, 1e-3, 200)]
    yield "large-magnitude", close, np.r_[np.zeros(200), np.ones(200)]


@pytest.mark.parametrize("name,score,is_ood", list(cases()), ids=[c[0] for c in cases()])
def test_equal_to_sklearn(name, score, is_ood):
    is_ood = is_ood.astype(bool)
    expected = sklearn_oracle(score, is_ood)
    for metric, value in expected.items():
        assert M.ood_metric(metric, score, is_ood) == pytest.approx(value, abs=1e-12), metric


def test_public_functions_match_table():
    rng = np.random.default_rng(1)
    score, is_ood = rng.normal(size=100), rng.random(100) < 0.4
    assert M.auroc(score, is_ood) == M.ood_metric("auroc", score, is_ood)
    assert M.fpr_at_95tpr_id.__name__ == "fpr_at_95tpr_id"


def test_fpr_conventions_pytorch_ood_case():
    # pytorch-ood's test_fpr_at_tpr_conventions: ID 0..29, OOD 10.5..29.5 -> OOD+ FPR@95 = 18/30.
    score = np.r_[np.arange(30.0), np.arange(10.5, 30.0)]
    is_ood = np.r_[np.zeros(30, bool), np.ones(20, bool)]
    assert M.fpr_at_95tpr_ood(score, is_ood) == pytest.approx(18 / 30)
    # ID+ by hand: keep 95% of ID -> t = 28 (29 of 30 ids <= 28); OOD <= 28: 10.5..27.5 -> 18 of 20.
    assert M.fpr_at_95tpr_id(score, is_ood) == pytest.approx(18 / 20)


def test_bootstrap_replicates_equal_sklearn_on_resampled_data():
    rng = np.random.default_rng(2)
    score = np.round(rng.normal(size=90), 1)
    is_ood = np.r_[np.zeros(60, bool), np.ones(30, bool)]
    chunk = next(M.bootstrap_counts(score, is_ood, 3, ("seed",), ("seed", "task")))
    assert (chunk.id_.sum(axis=1) == 60).all() and (chunk.ood.sum(axis=1) == 30).all()
    id_draws = next(resample_indices(60, 3, "seed", "id"))
    ood_draws = next(resample_indices(30, 3, "seed", "task", "ood"))
    for r in range(3):
        index = np.r_[id_draws[r], 60 + ood_draws[r]]
        expected = sklearn_oracle(score[index], is_ood[index])
        for metric, fn in M.OOD_METRICS.items():
            assert fn(chunk)[r] == pytest.approx(expected[metric], abs=1e-12), metric


def test_metric_rows_interval_and_seed():
    rng = np.random.default_rng(3)
    score, is_ood = rng.normal(size=200) + np.r_[np.zeros(150), np.ones(50)], np.r_[np.zeros(150), np.ones(50)] > 0
    rows = M.ood_metric_rows(score, is_ood, (0,), (0, "k"), n_boot=200)
    again = M.ood_metric_rows(score, is_ood, (0,), (0, "k"), n_boot=200)
    assert rows == again
    assert [r["metric"] for r in rows] == list(M.OOD_METRICS)
    for r in rows:
        assert r["ci_low"] <= r["value"] <= r["ci_high"] and r["n"] == 200 and len(r["replicates"]) == 200
        assert np.percentile(r["replicates"], 2.5) == pytest.approx(r["ci_low"], abs=1e-6)


def test_shared_id_seed_shares_id_resamples():
    score, is_ood = np.arange(40.0), np.r_[np.zeros(30, bool), np.ones(10, bool)]
    a = next(M.bootstrap_counts(score, is_ood, 5, ("s",), ("s", "task-a")))
    b = next(M.bootstrap_counts(score, is_ood, 5, ("s",), ("s", "task-b")))
    assert np.array_equal(a.id_, b.id_) and not np.array_equal(a.ood, b.ood)


@pytest.mark.parametrize("score,is_ood,match", [
    (np.zeros(5), np.zeros(5, bool), "both ID and OOD"),
    (np.array([0.0, np.nan]), np.array([False, True]), "not finite"),
    (np.zeros(3), np.zeros(4, bool), "one length"),
])
def test_bad_input(score, is_ood, match):
    with pytest.raises(DataError, match=match):
        M.auroc(score, is_ood)

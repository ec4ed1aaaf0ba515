"""Selective prediction metrics against torch-uncertainty, a literal numpy oracle, and a hand-computed tied case."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.special import log_softmax
from sklearn.metrics import roc_auc_score

from robustbench_local.metrics import METRICS, Predictions, classification_metrics, predictions, resample_weights
from robustbench_local.metrics.calibration import Weighted
from robustbench_local.metrics.selective import METRIC_SPECS

SELECTIVE = ("aurc", "eaurc", "augrc", "selective_risk_at_80", "selective_risk_at_90", "selective_risk_at_95",
             "coverage_at_risk_1", "coverage_at_risk_5", "misclassification_auroc")


def probs_of(confidence: np.ndarray, correct: np.ndarray) -> Predictions:
    """Two-class predictions with the given top-class confidences (> 1/2) and correctness."""
    probs = np.stack([confidence, 1 - confidence], axis=1)
    return Predictions(np.log(probs), np.where(correct, 0, 1))


def values(p: Predictions, w: np.ndarray | None = None) -> dict[str, float]:
    x = Weighted(p, np.ones((1, len(p.labels))) if w is None else w[None])
    return {name: float(METRICS[name](x)[0]) for name in SELECTIVE}


def literal(confidence: np.ndarray, correct: np.ndarray) -> dict[str, float]:
    """Sorted-order definitions written out literally (distinct confidences)."""
    n = len(confidence)
    errors = 1.0 - correct[np.argsort(-confidence, kind="stable")]
    k = np.arange(1, n + 1)
    risk = np.cumsum(errors) / k
    best = np.cumsum(np.sort(errors)) / k
    aurc = sum((risk[i] + risk[i + 1]) / 2 for i in range(n - 1)) / (n - 1)
    gen = np.cumsum(errors) / n
    out = {"aurc": aurc, "eaurc": aurc - sum((best[i] + best[i + 1]) / 2 for i in range(n - 1)) / (n - 1),
           "augrc": sum((gen[i] + gen[i + 1]) / 2 for i in range(n - 1)) / (n - 1),
           "misclassification_auroc": roc_auc_score(correct, confidence)}
    for c in (80, 90, 95):
        out[f"selective_risk_at_{c}"] = risk[int(np.ceil(round(n * c / 100, 9))) - 1]
    for r in (1, 5):
        ok = np.flatnonzero(risk <= r / 100)
        out[f"coverage_at_risk_{r}"] = (ok[-1] + 1) / n if len(ok) else np.nan
    return out


@pytest.mark.parametrize("n", [7, 40, 333])
def test_equals_literal_oracle_without_ties(n):
    rng = np.random.default_rng(n)
    confidence = rng.uniform(0.5, 1.0, n)
    correct = rng.random(n) < confidence * 0.9 + 0.08
    got, want = values(probs_of(confidence, correct)), literal(confidence, correct)
    for name in SELECTIVE:
        assert got[name] == pytest.approx(want[name], abs=1e-12, nan_ok=True), name


@pytest.mark.parametrize("n", [20, 100, 257])
def test_equals_torch_uncertainty(n):
    torch = pytest.importorskip("torch")
    tu = pytest.importorskip("torch_uncertainty.metrics.classification")
    rng = np.random.default_rng(n + 1)
    logits = rng.normal(size=(n, 5)) * 2
    labels = rng.integers(0, 5, n)
    p = Predictions.from_logits(logits, labels)
    got = values(p)
    probs, targets = torch.tensor(p.probs), torch.tensor(labels)

    def ref(metric) -> float:
        metric.update(probs, targets)
        return float(metric.compute())

    assert got["aurc"] == pytest.approx(ref(tu.AURC()), abs=1e-6)  # its coverage grid is float32
    assert got["augrc"] == pytest.approx(ref(tu.AUGRC()), abs=1e-6)
    for c in (80, 90, 95):
        assert got[f"selective_risk_at_{c}"] == pytest.approx(ref(tu.RiskAtxCov(c / 100)), abs=1e-6)
    for r in (1, 5):
        assert got[f"coverage_at_risk_{r}"] == pytest.approx(ref(tu.CovAtxRisk(r / 100)), abs=1e-6, nan_ok=True)


def test_weights_are_copies():
    """Integer weights give the metrics of the data with each sample repeated (copies tie, averaging is exact)."""
    rng = np.random.default_rng(3)
    n = 60
    confidence, correct = rng.uniform(0.5, 1.0, n), rng.random(n) < 0.7
    w = rng.integers(0, 4, n).astype(float)
    repeated = probs_of(np.repeat(confidence, w.astype(int)), np.repeat(correct, w.astype(int)))
    got, want = values(probs_of(confidence, correct), w), values(repeated)
    for name in SELECTIVE:
        assert got[name] == pytest.approx(want[name], abs=1e-12, nan_ok=True), name


def test_hand_computed_ties():
    """Confidences 0.9 (right), 0.8 (wrong), 0.8 (right), 0.6 (wrong): the tied pair is averaged over its orders.

    E(k) = 0, 0.5, 1, 2 for k = 1..4, so r = 0, 1/4, 1/3, 1/2. AURC = ((0 + 1/4) + (1/4 + 1/3) + (1/3 + 1/2)) / 2 / 3
    = 2/3 * ... = 0.2777...; the optimal order has r* = 0, 0, 1/3, 1/2, AURC* = (0 + 1/3 + 5/6) / 2 / 3 = 7/36.
    AUGRC: E/4 = 0, 1/8, 1/4, 1/2 -> (1/8 + 3/8 + 3/4) / 2 / 3 = 5/24. Risk at 80%: k = ceil(3.2) = 4 -> 1/2; at
    coverage 0.5 -> k = 2, r = 1/4. Coverage at risk 0.3: r(k) <= 0.3 up to k = 2 (r across the tie rises from 0 to
    1/3, crossing 0.3 at k = 0.5 / 0.2 = 2.5) -> 2/4. AUROC: correct {0.9, 0.8} vs wrong {0.8, 0.6}: pairs 1, 1, 1/2,
    1 -> 3.5/4.
    """
    p = probs_of(np.array([0.9, 0.8, 0.8, 0.6]), np.array([True, False, True, False]))
    x = Weighted(p, np.ones((1, 4)))
    from robustbench_local.metrics.selective import coverage_at_risk, risk_at_coverage
    got = values(p)
    assert got["aurc"] == pytest.approx((0.25 + 0.25 + 1 / 3 + 1 / 3 + 0.5) / 6)
    assert got["eaurc"] == pytest.approx(got["aurc"] - 7 / 36)
    assert got["augrc"] == pytest.approx(5 / 24)
    assert got["selective_risk_at_80"] == pytest.approx(0.5)
    assert float(risk_at_coverage(x, 0.5)[0]) == pytest.approx(0.25)
    assert float(coverage_at_risk(x, 0.3)[0]) == pytest.approx(0.5)
    assert got["misclassification_auroc"] == pytest.approx(3.5 / 4)
    # tie order does not matter: swapping the tied pair's positions gives the same numbers
    swapped = values(probs_of(np.array([0.9, 0.8, 0.8, 0.6]), np.array([True, True, False, False])))
    assert swapped == pytest.approx(got)


def test_vectorised_over_replicates_and_rows_with_intervals():
    rng = np.random.default_rng(5)
    logits, labels = rng.normal(size=(80, 4)) * 3, rng.integers(0, 4, 80)
    p = Predictions.from_logits(logits, labels)
    w = next(resample_weights(80, 7, "t"))
    batch = Weighted(p, w)
    for name in SELECTIVE:
        one_by_one = [METRICS[name](Weighted(p, row[None]))[0] for row in w]
        np.testing.assert_allclose(METRICS[name](batch), one_by_one, rtol=1e-12, atol=1e-12, equal_nan=True)
    rows = {r["metric"]: r for r in classification_metrics(predictions(logits, labels, 1.5), (0, "t"), n_boot=50)}
    for name in SELECTIVE:
        for metric in (name, name + "_ts"):
            assert rows[metric]["ci_low"] <= rows[metric]["value"] <= rows[metric]["ci_high"], metric


def test_declared_with_direction_range_definition():
    names = {spec.name: spec for spec in METRIC_SPECS}
    for name in SELECTIVE:
        for metric in (name, name + "_ts"):
            assert names[metric].definition and names[metric].low == 0.0 and names[metric].high == 1.0
    assert not names["aurc"].higher_is_better and names["misclassification_auroc"].higher_is_better


def test_temperature_changes_the_ranking_not_the_errors():
    logits = np.array([[4.0, 0.0, 0.0], [2.0, 1.9, -9.0], [0.0, 3.0, 0.0]])
    labels = np.array([1, 0, 1])
    raw, hot = Predictions.from_logits(logits, labels), Predictions(log_softmax(logits / 5, axis=1), labels)
    assert np.array_equal(raw.correct, hot.correct)
    assert np.argsort(raw.confidence).tolist() != np.argsort(hot.confidence).tolist()

"""Every classification/calibration metric against an independent oracle."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss

from robustbench_local.metrics import (
    Predictions,
    Weighted,
    bootstrap,
    fit_temperature,
    resample_weights,
    temperature_at_bound,
)
from robustbench_local.metrics.calibration import (
    accuracy,
    brier_sum,
    classwise_ece,
    ece_equal_mass,
    ece_equal_width,
    mce,
    nll,
    reliability_table,
)


def value(fn, p: Predictions) -> float:
    return float(fn(Weighted(p, np.ones((1, len(p.labels)))))[0])


@pytest.fixture(scope="module")
def random_case() -> Predictions:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(600, 5)) * 3
    labels = np.where(rng.random(600) < 0.7, logits.argmax(1), rng.integers(0, 5, 600))
    return Predictions.from_logits(logits, labels)


def numpy_ece(conf: np.ndarray, correct: np.ndarray, n_bins: int = 15) -> tuple[float, float]:
    """Guo et al. with numpy.histogram's bin rule ([a,b), last bin closed)."""
    edges = np.linspace(0, 1, n_bins + 1)
    idx = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, n_bins - 1)
    ece, worst = 0.0, 0.0
    for b in range(n_bins):
        m = idx == b
        if m.any():
            gap = abs(correct[m].mean() - conf[m].mean())
            ece += m.mean() * gap
            worst = max(worst, gap)
    return ece, worst


def test_accuracy_nll_brier_match_sklearn(random_case):
    p = random_case
    assert value(accuracy, p) == pytest.approx(accuracy_score(p.labels, p.pred), abs=1e-12)
    assert value(nll, p) == pytest.approx(log_loss(p.labels, p.probs, labels=range(5)), rel=1e-9)
    assert value(brier_sum, p) == pytest.approx(brier_score_loss(p.labels, p.probs, labels=range(5)), rel=1e-9)


def test_ece_and_mce_match_netcal_and_numpy(random_case):
    from netcal.metrics import ECE, MCE

    p = random_case
    ece_ref, mce_ref = numpy_ece(p.confidence, p.correct)
    assert value(ece_equal_width, p) == pytest.approx(ece_ref, abs=1e-12)
    assert value(mce, p) == pytest.approx(mce_ref, abs=1e-12)
    assert value(ece_equal_width, p) == pytest.approx(ECE(15).measure(p.probs, p.labels), abs=1e-6)
    assert value(mce, p) == pytest.approx(MCE(15).measure(p.probs, p.labels), abs=1e-6)


def test_confidence_exactly_one_lands_in_the_last_bin():
    # conf = [0.95, 1.0], correct = [1, 0]: both in the closed last bin -> |0.5 - 0.975| = 0.475 (netcal's value)
    log_probs = np.log(np.array([[0.95, 0.05], [1.0, 1e-300]]))
    p = Predictions(log_probs, np.array([0, 1]))
    assert p.confidence.tolist() == [0.95, 1.0]
    assert value(ece_equal_width, p) == pytest.approx(0.475, abs=1e-12)
    assert value(mce, p) == pytest.approx(0.475, abs=1e-12)
    assert reliability_table(p)[-1]["count"] == 2


def test_nll_clips_zero_probability_at_1e_minus_12():
    p = Predictions(np.log(np.array([[1.0, 1e-300]])), np.array([1]))
    assert value(nll, p) == pytest.approx(-np.log(1e-12))


def test_equal_mass_ece_hand_case():
    # 30 samples, 15 bins of 2 after sorting by confidence
    conf = np.linspace(0.5, 0.99, 30)
    correct = (np.arange(30) % 3 == 0).astype(float)
    probs = np.stack([conf, 1 - conf], 1)
    p = Predictions(np.log(probs), np.where(correct == 1, 0, 1))
    expected = sum(abs(correct[i:i + 2].mean() - conf[i:i + 2].mean()) * 2 / 30 for i in range(0, 30, 2))
    assert value(ece_equal_mass, p) == pytest.approx(expected, abs=1e-12)


def test_equal_mass_ece_with_uneven_bins(random_case):
    p = random_case  # 600 samples: 15 bins of 40
    order = np.argsort(p.confidence, kind="stable")
    parts = np.array_split(order, 15)
    expected = sum(abs(p.correct[i].mean() - p.confidence[i].mean()) * len(i) for i in parts) / 600
    assert value(ece_equal_mass, p) == pytest.approx(expected, abs=1e-12)
    q = Predictions(p.log_probs[:507], p.labels[:507])  # 507 = 15 * 33 + 12: uneven bins
    order = np.argsort(q.confidence, kind="stable")
    expected = sum(abs(q.correct[i].mean() - q.confidence[i].mean()) * len(i) for i in np.array_split(order, 15)) / 507
    assert value(ece_equal_mass, q) == pytest.approx(expected, abs=1e-12)


def test_classwise_ece_against_per_class_loop(random_case):
    p = random_case
    per_class = [numpy_ece(p.probs[:, k], (p.labels == k).astype(float))[0] for k in range(5)]
    assert value(classwise_ece, p) == pytest.approx(np.mean(per_class), abs=1e-12)


def test_weights_equal_explicit_resampling(random_case):
    """A bootstrap replicate computed with weights equals the metric on the resampled rows."""
    p = random_case
    w = next(resample_weights(len(p.labels), 3, "x"))
    for r in range(3):
        idx = np.repeat(np.arange(len(p.labels)), w[r].astype(int))
        sub = Predictions(p.log_probs[idx], p.labels[idx])
        for fn in (accuracy, nll, brier_sum, ece_equal_width, mce, classwise_ece, ece_equal_mass):
            assert fn(Weighted(p, w[r:r + 1]))[0] == pytest.approx(value(fn, sub), abs=1e-12), fn.__name__


def test_bootstrap_is_seeded_and_brackets_the_estimate(random_case):
    p = random_case
    a, b, c = (bootstrap(lambda w: {"ece": ece_equal_width(Weighted(p, w))}, 600, seed, "task")["ece"]
               for seed in (0, 0, 1))
    assert a == b and a != c
    assert a[1] <= a[0] <= a[2]


def test_temperature_reaches_the_nll_optimum():
    rng = np.random.default_rng(1)
    calibrated = rng.normal(size=(2000, 10)) * 2
    labels = np.array([rng.choice(10, p=row) for row in softmax(calibrated, axis=1)])
    logits = 3 * calibrated

    def nll_t(t):
        return -log_softmax(logits / t, axis=1)[np.arange(2000), labels].mean()

    exact = minimize_scalar(nll_t, bounds=(0.5, 10), method="bounded", options={"xatol": 1e-10}).x
    t = fit_temperature(logits, labels)
    assert t == pytest.approx(exact, rel=1e-5)
    assert 2.7 < t < 3.3
    from netcal.scaling import TemperatureScaling

    scaler = TemperatureScaling(method="mle")
    scaler.fit(softmax(logits, axis=1), labels)
    assert 1 / float(np.asarray(scaler.temperature).ravel()[0]) == pytest.approx(t, rel=1e-3)


def test_a_temperature_fit_that_stops_at_a_bound_is_recognised():
    """Logits unrelated to the labels: the NLL falls towards uniform, T = 100. Every prediction right by a margin: it
    falls towards 0 as T shrinks (numerically flat well before 0.01). A calibrated case: an interior optimum."""
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 10, 500)
    unrelated = rng.normal(size=(500, 10)) * 3
    separable = 5 * np.eye(10)[labels] + rng.normal(size=(500, 10)) * 0.1
    calibrated = rng.normal(size=(2000, 10)) * 2
    drawn = np.array([rng.choice(10, p=row) for row in softmax(calibrated, axis=1)])
    assert temperature_at_bound(unrelated, labels, fit_temperature(unrelated, labels)) == 100
    assert temperature_at_bound(separable, labels, fit_temperature(separable, labels)) == 0.01
    assert temperature_at_bound(3 * calibrated, drawn, fit_temperature(3 * calibrated, drawn)) is None

"""Split conformal sets: thresholds, sets and coverage against MAPIE; coverage over random splits; invariances."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.base import BaseEstimator, ClassifierMixin

from robustbench_local.metrics.conformal import (
    ConformalFit,
    aps_noise,
    conformal_metrics,
    conformal_quantile,
    label_scores,
    metric_specs,
    spec_of,
)


def data(n: int, k: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits of a model that is right about 70% of the time, and labels drawn from its own softmax (exchangeable)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * 2.5
    labels = np.array([rng.choice(k, p=p) for p in softmax(logits, axis=1)])
    return logits, labels


class Fixed(ClassifierMixin, BaseEstimator):
    """A prefit classifier whose input is a row index into fixed probabilities (so MAPIE sees exactly ours)."""

    def __init__(self, probs: np.ndarray | None = None):
        self.probs = probs
        if probs is not None:
            self.classes_ = np.arange(probs.shape[1])  # prefit: MAPIE never calls fit

    def fit(self, x, y):
        return self

    def predict_proba(self, x):
        return self.probs[np.asarray(x)[:, 0].astype(int)]

    def predict(self, x):
        return self.predict_proba(x).argmax(axis=1)


def test_quantile_is_the_finite_sample_order_statistic():
    scores = np.arange(1, 20) / 20  # n = 19
    assert conformal_quantile(scores, 0.1) == scores[math.ceil(20 * 0.9) - 1]  # the 18th smallest
    assert conformal_quantile(scores, 0.05) == scores[18]  # the 19th of 19
    assert conformal_quantile(scores[:10], 0.05) == math.inf  # ceil(11 * 0.95) = 11 > 10: every label


@pytest.mark.parametrize("n_cal", [200, 999])
def test_lac_equals_mapie(n_cal):
    mapie = pytest.importorskip("mapie.classification")
    mapie_metrics = pytest.importorskip("mapie.metrics.classification")
    logits, labels = data(n_cal + 300, seed=n_cal)
    probs = softmax(logits, axis=1)
    cal, test = np.arange(n_cal), np.arange(n_cal, n_cal + 300)
    fit = ConformalFit.fit(logits[cal], labels[cal], cal.astype(str), (0.1, 0.05))
    ours = {r["metric"]: r["value"] for r in conformal_metrics(logits[test], labels[test], test.astype(str), fit, (0,),
                                                               n_boot=10)}
    for alpha, level in ((0.1, "90"), (0.05, "95")):
        clf = mapie.SplitConformalClassifier(Fixed(probs), confidence_level=1 - alpha, conformity_score="lac",
                                             prefit=True)
        clf.conformalize(cal[:, None], labels[cal])
        _, sets = clf.predict_set(test[:, None])
        assert fit.thresholds["lac"][[0.1, 0.05].index(alpha)] == pytest.approx(
            float(clf._mapie_classifier.conformity_score_function_.quantiles_[0]), abs=1e-12)
        sets = sets[:, :, 0]
        mine = label_scores(probs[test], np.zeros(len(test)), "lac") <= fit.thresholds["lac"][[0.1, 0.05].index(alpha)]
        assert np.array_equal(mine, sets)
        assert ours[f"conformal_coverage_{level}"] == pytest.approx(
            float(mapie_metrics.classification_coverage_score(labels[test], sets[:, :, None])[0]))
        assert ours[f"conformal_set_size_{level}"] == pytest.approx(
            float(mapie_metrics.classification_mean_width_score(sets[:, :, None])[0]))


def test_aps_threshold_and_sets_equal_mapie_on_the_same_scores():
    """MAPIE draws its own APS noise, so it is given our scores: its quantile of them is our threshold, and its
    deterministic APS sets (include_last_label=True) are ours at u = 0."""
    pytest.importorskip("mapie")
    from mapie.conformity_scores.sets.aps import APSConformityScore
    from mapie.utils import _compute_classification_quantile

    logits, labels = data(700, seed=4)
    probs = softmax(logits, axis=1)
    cal, test = np.arange(500), np.arange(500, 700)
    fit = ConformalFit.fit(logits[cal], labels[cal], cal.astype(str), (0.1, 0.05))
    cal_scores = label_scores(probs[cal], aps_noise(cal.astype(str)), "aps")[cal, labels[cal]]
    np.testing.assert_allclose(fit.thresholds["aps"], _compute_classification_quantile(cal_scores, np.array([0.1, 0.05])),
                               atol=1e-12)
    score = APSConformityScore()
    score.quantiles_ = np.array([0.8, 0.9])
    score.classes = np.arange(6)
    sets = score.get_prediction_sets(np.repeat(probs[test][:, :, None], 2, axis=2), cal_scores, np.array([0.2, 0.1]), cv="prefit",
                                     include_last_label=True)
    for i, q in enumerate((0.8, 0.9)):
        assert np.array_equal(label_scores(probs[test], np.zeros(len(test)), "aps") <= q, sets[:, :, i])


@pytest.mark.parametrize("score", ["lac", "aps"])
def test_coverage_over_random_splits_is_nominal(score):
    """On exchangeable data the coverage over 200 random calibration/test splits averages 1 - alpha (within 1 pt)."""
    logits, labels = data(1000, seed=9)
    ids = np.arange(1000).astype(str)
    rng = np.random.default_rng(1)
    probs = softmax(logits, axis=1)
    u = aps_noise(ids)
    scores = label_scores(probs, u, score)
    true = scores[np.arange(1000), labels]
    for alpha in (0.1, 0.05):
        coverage = []
        for _ in range(200):
            perm = rng.permutation(1000)
            cal, test = perm[:500], perm[500:]
            q = conformal_quantile(true[cal], alpha)
            coverage.append(np.mean(true[test] <= q))
        assert abs(np.mean(coverage) - (1 - alpha)) < 0.01


def test_rows_intervals_strata_and_independence_of_order():
    logits, labels = data(600, seed=2)
    ids = np.array([f"img{i}" for i in range(600)])
    fit = ConformalFit.fit(logits[:300], labels[:300], ids[:300], (0.1, 0.05))
    rows = {r["metric"]: r for r in conformal_metrics(logits[300:], labels[300:], ids[300:], fit, (0, "k"), n_boot=200)}
    for score in ("", "_aps"):
        for level in ("90", "95"):
            cov = rows[f"conformal_coverage_{level}{score}"]
            assert cov["ci_low"] <= cov["value"] <= cov["ci_high"]
            gap = rows[f"conformal_coverage_gap_{level}{score}"]["value"]
            assert gap == pytest.approx(int(level) / 100 - cov["value"])
            strata = [rows[f"conformal_coverage_size{s}_{level}{score}"] for s in ("0to1", "2to3", "4plus")]
            assert sum(r["n"] for r in strata) == 300
            weighted = sum(r["value"] * r["n"] for r in strata if r["n"])
            assert weighted / 300 == pytest.approx(cov["value"])
    perm = np.random.default_rng(0).permutation(300) + 300
    shuffled = {r["metric"]: r["value"] for r in conformal_metrics(logits[perm], labels[perm], ids[perm], fit, (0, "k"),
                                                                   n_boot=10)}
    assert shuffled == pytest.approx({k: r["value"] for k, r in rows.items()}, nan_ok=True)


def test_fit_round_trips_and_specs_cover_every_row():
    logits, labels = data(100, seed=3)
    ids = np.arange(100).astype(str)
    fit = ConformalFit.fit(logits, labels, ids, (0.1, 0.05))
    assert ConformalFit.from_dict(fit.to_dict()) == fit
    names = {s.name for s in metric_specs()}
    assert {r["metric"] for r in conformal_metrics(logits, labels, ids, fit, (0,), n_boot=5)} <= names
    assert "conformal_coverage_90" in names and "conformal_set_size_95_aps" in names
    assert spec_of("conformal_coverage_gap_97.5_aps").name == "conformal_coverage_gap_97.5_aps"
    assert spec_of("conformal_coverage_90") == {s.name: s for s in metric_specs()}["conformal_coverage_90"]
    assert spec_of("conformal_nonsense_90") is None and spec_of("acc") is None


def test_an_empty_stratum_is_nan_without_a_warning():
    """No set holds 4+ labels of 2 classes: that stratum's coverage has no value and no interval, silently (the
    evaluate command's stderr stays clean)."""
    logits, labels = data(80, k=2, seed=6)
    ids = np.arange(80).astype(str)
    fit = ConformalFit.fit(logits[:40], labels[:40], ids[:40], (0.1,))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rows = {r["metric"]: r for r in conformal_metrics(logits[40:], labels[40:], ids[40:], fit, (0,), n_boot=50)}
    empty = rows["conformal_coverage_size4plus_90"]
    assert empty["n"] == 0 and np.isnan([empty["value"], empty["ci_low"], empty["ci_high"]]).all()

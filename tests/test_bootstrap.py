"""The chunked bootstrap draws the same resamples and gives the same intervals as the dense-weights one it replaced
(tests/bootstrap_reference.py): to 1e-12 for the classification metrics (their sums now add in another order),
bit for bit for OOD metrics and for accuracy-like ratios (sums of integer counts are exact in any order); and the
literal intervals the dense implementation printed."""
from __future__ import annotations

import bootstrap_reference as reference
import numpy as np
import pytest
from robustbench_local.corruptions.summary import PAIRED_METRICS, SUMMARY_KEY, paired_rows
from robustbench_local.ood.metrics import ood_metric_rows

from robustbench_local.metrics import (
    CHUNK_DRAWS,
    CHUNK_ROWS,
    METRICS,
    bootstrap,
    classification_metrics,
    predictions,
    resample_indices,
    resample_weights,
    statistic_of,
)
from robustbench_local.records import classification_records

TOLERANCE = 1e-12


def case(n: int, k: int, seed: int, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """float32 logits (as records store them) of a classifier right about half of the time, and labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) * 2
    logits[np.arange(n), labels] += rng.normal(2, 2, n)
    if ties:  # repeated rows: tied confidences, where the equal-mass order must stay stable
        logits[::7], labels[::7] = logits[0], labels[0]
    return logits.astype(np.float32), labels


@pytest.mark.parametrize("n", [1, 2, 15, 999, 30_000])
def test_resamples_do_not_depend_on_the_chunking(n):
    n_boot = 250 if n < 30_000 else 3
    dense = np.concatenate(list(reference.weights(n, n_boot, 4, "task")))
    for rows in (1, 7, 100, None):
        draws = list(resample_indices(n, n_boot, 4, "task", rows=rows))
        assert sum(len(d) for d in draws) == n_boot
        assert np.array_equal(np.concatenate(list(resample_weights(n, n_boot, 4, "task", rows=rows))), dense)


def test_chunks_hold_a_bounded_number_of_draws():
    for n in (10, 20_000, 300_000, 2 * CHUNK_DRAWS):
        shapes = [w.shape for w in resample_weights(n, 7 if n > CHUNK_DRAWS else 1000, 0)]
        assert all(b * m <= max(CHUNK_DRAWS, n) and b <= CHUNK_ROWS for b, m in shapes)


@pytest.mark.parametrize("n,k,temperature,ties", [(1, 2, 1.5, False), (9, 3, 0.7, False), (16, 3, 1.3, False),
                                                  (500, 5, 1.3, True), (1234, 10, 2.0, False),
                                                  (300, 1000, 1.1, False)])
def test_classification_intervals_equal_the_dense_reference(n, k, temperature, ties):
    logits, labels = case(n, k, n, ties)
    rows = classification_metrics(predictions(logits, labels, temperature), (7, "task"))
    expected = reference.classification_metrics(logits, labels, temperature, (7, "task"))
    assert [r["metric"] for r in rows] == list(expected)
    for r in rows:
        value, low, high = expected[r["metric"]]
        assert r["value"] == pytest.approx(value, abs=TOLERANCE, nan_ok=True), r["metric"]
        assert r["ci_low"] == pytest.approx(low, abs=TOLERANCE, nan_ok=True), r["metric"]
        assert r["ci_high"] == pytest.approx(high, abs=TOLERANCE, nan_ok=True), r["metric"]
        if r["metric"] == "acc":
            assert (r["value"], r["ci_low"], r["ci_high"]) == (value, low, high)


def test_every_metric_under_arbitrary_weights_equals_the_reference():
    """The metrics' statistic (which the gate's paired bootstrap also runs) on weights that straddle equal-mass cuts,
    ones and zeros."""
    logits, labels = case(200, 7, 3)
    w = np.concatenate([next(reference.weights(200, 40, "gate")), np.ones((1, 200)),
                        np.random.default_rng(0).integers(0, 2, (5, 200)).astype(float)])
    for suffix, t in (("", 1.0), ("_ts", 1.8)):
        p = reference.Predictions(logits, labels, t)
        for name, fn in reference.METRICS.items():
            got = statistic_of(predictions(logits, labels, 1.8), [name + suffix])(w)[name + suffix]
            np.testing.assert_allclose(got, fn(p, w), rtol=0, atol=TOLERANCE, err_msg=name + suffix)
    assert set(METRICS) == set(reference.METRICS)


def test_no_samples_give_nan_rows():
    rows = classification_metrics(predictions(np.zeros((0, 3)), np.zeros(0, int), 1.2), (0, "t"))
    assert len(rows) == 2 * len(METRICS) - 1 and all(np.isnan([r["value"], r["ci_low"], r["ci_high"]]).all() for r in rows)


def test_paired_replicates_equal_the_dense_reference():
    logits, labels = case(777, 10, 5)
    ids = np.random.default_rng(1).permutation(777) * 3  # stored in another order than sorted
    records = classification_records(logits, labels, ids)
    rows = paired_rows([{"metric": m} for m in PAIRED_METRICS], records, predictions(logits, labels, 1.4), 7)
    expected = reference.paired(logits, labels, ids, 1.4, 7, SUMMARY_KEY)
    for r in rows:
        np.testing.assert_allclose(r["paired"], expected[r["metric"]], rtol=0, atol=TOLERANCE, err_msg=r["metric"])
    assert rows[0]["paired"] == expected["acc"].tolist()


def test_one_pass_over_several_ratios_equals_one_pass_each():
    """The attack suite bootstraps robust_acc, clean_acc and attack_success_rate in one pass over the resamples."""
    rng = np.random.default_rng(8)
    clean = (rng.random(300) < 0.8).astype(float)
    robust = clean * (rng.random(300) < 0.4)

    def ratio(num, den):
        return lambda w: (w @ num) / (w @ den if den is not None else w.sum(axis=1))

    ratios = {"robust_acc": ratio(robust, None), "clean_acc": ratio(clean, None),
              "attack_success_rate": ratio(clean - robust, clean)}
    together = bootstrap(lambda w: {name: fn(w) for name, fn in ratios.items()}, 300, 3, "task")
    for name, fn in ratios.items():
        assert together[name] == reference.bootstrap({name: fn}, 300, 3, "task")[name]


@pytest.mark.parametrize("n_id,n_ood,decimals", [(3, 2, 1), (400, 300, 2), (2500, 3100, 3)])
def test_ood_rows_equal_the_dense_reference_bit_for_bit(n_id, n_ood, decimals):
    rng = np.random.default_rng(n_id)
    score = np.round(rng.normal(size=n_id + n_ood), decimals)  # ties between and within the sets
    is_ood = rng.permutation(np.r_[np.zeros(n_id, bool), np.ones(n_ood, bool)])
    rows = ood_metric_rows(score, is_ood, (0, "ood-id"), (0, "task"))
    expected = reference.ood_rows(score, is_ood, (0, "ood-id"), (0, "task"))
    for r in rows:
        assert (r["value"], r["ci_low"], r["ci_high"], r["replicates"]) == expected[r["metric"]], r["metric"]


# What the dense implementation printed for the cases below (seeded, B = 1000).
DENSE_CLASSIFICATION = {
    "acc": (0.525, 0.4775, 0.5725),
    "nll": (1.7204649696293932, 1.5416748258532726, 1.9235193227024616),
    "brier_sum": (0.7124935797677767, 0.6539931170486741, 0.7721535894755616),
    "ece_15_equal_width": (0.23768825770827134, 0.19772596671304185, 0.28217938317802344),
    "ece_15_equal_mass": (0.24495777232142493, 0.2016891490959038, 0.2880451933414021),
    "mce": (0.4220323309418998, 0.3452519863226892, 0.5991251992358803),
    "classwise_ece": (0.10357562495112653, 0.10125545737371708, 0.12547523835053667),
    "nll_ts": (1.445345627653042, 1.3360357092759856, 1.5631231570224267),
    "brier_sum_ts": (0.667674368208089, 0.6258050862296032, 0.7108842443546436),
    "ece_15_equal_width_ts": (0.1426432752689947, 0.11070341167864055, 0.19043498108161405),
    "ece_15_equal_mass_ts": (0.1419360841427494, 0.1258952412592094, 0.2045462751174158),
    "mce_ts": (0.26414804899547817, 0.22306224139437603, 0.5250069124513056),
    "classwise_ece_ts": (0.07692431550830783, 0.07796094938660682, 0.09951256228021185),
}
DENSE_OOD = {
    "auroc": (0.7216750000000001, 0.6576, 0.7830612500000002),
    "aupr_in": (0.828686071206648, 0.782806495845411, 0.8758822990039278),
    "aupr_out": (0.5855365914860005, 0.5010104744621944, 0.665968431227102),
    "ap_in": (0.8296692759047236, 0.7874361375420241, 0.8755547840062808),
    "ap_out": (0.5831750119375604, 0.5060605897487198, 0.6634641123676177),
    "fpr_at_95tpr_id": (0.76, 0.62, 0.89),
    "fpr_at_95tpr_ood": (0.8, 0.5898749999999999, 0.92),
    "detection_error": (0.31500000000000006, 0.25993749999999993, 0.36499999999999994),
}


def test_the_intervals_the_dense_implementation_printed():
    rng = np.random.default_rng(20240)
    n, k = 400, 6
    labels = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) * 2
    logits[np.arange(n), labels] += rng.normal(2, 2, n)
    logits[::7], labels[::7] = logits[0], labels[0]
    for r in classification_metrics(predictions(logits, labels, 1.7), (11, "golden")):
        if r["metric"] not in DENSE_CLASSIFICATION:  # added later than the golden numbers: the reference test has them
            continue
        assert (r["value"], r["ci_low"], r["ci_high"]) == pytest.approx(DENSE_CLASSIFICATION[r["metric"]],
                                                                        abs=TOLERANCE), r["metric"]
    score = np.round(rng.normal(size=300), 1) + np.r_[np.zeros(200), np.ones(100)]
    is_ood = np.r_[np.zeros(200, bool), np.ones(100, bool)]
    for r in ood_metric_rows(score, is_ood, (11, "ood-id"), (11, "golden")):
        assert (r["value"], r["ci_low"], r["ci_high"]) == DENSE_OOD[r["metric"]], r["metric"]

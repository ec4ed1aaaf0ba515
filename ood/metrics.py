"""OOD detection metrics on score arrays (score higher = more OOD; ID negative, OOD positive unless named).

Definitions: ../shared/reference/definitions.md (OOD). Every metric is computed from ID and OOD counts per
distinct score, one row per data set: the samples themselves (the point estimate) or each resample of a chunk of
bootstrap replicates. On the samples themselves each equals scikit-learn, ties included (tests/test_ood_metrics.py).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from robustbench_local.errors import DataError
from robustbench_local.metrics.bootstrap import N_BOOT, chunk_rows, counts, resample_indices
from robustbench_local.metrics.contract import MetricSpec

TPR_LEVEL = 0.95


@dataclass(frozen=True)
class Counts:
    """ID and OOD counts per distinct score, scores ascending: arrays of shape (B, G), one row per data set."""

    id_: np.ndarray
    ood: np.ndarray

    @classmethod
    def of(cls, score: np.ndarray, is_ood: np.ndarray) -> Counts:
        """The counts of the samples themselves (B = 1)."""
        group, n_groups = _score_groups(score)
        return cls(counts(group[None, ~is_ood], n_groups), counts(group[None, is_ood], n_groups))

    @cached_property
    def roc(self) -> tuple[np.ndarray, np.ndarray]:
        """(fpr, tpr) with OOD positive, thresholds from the highest score down, starting at (0, 0)."""
        zeros = np.zeros((len(self.ood), 1))
        tpr = np.cumsum(self.ood[:, ::-1], axis=1) / self.ood.sum(axis=1, keepdims=True)
        fpr = np.cumsum(self.id_[:, ::-1], axis=1) / self.id_.sum(axis=1, keepdims=True)
        return np.concatenate([zeros, fpr], axis=1), np.concatenate([zeros, tpr], axis=1)

    @cached_property
    def pr_out(self) -> tuple[np.ndarray, np.ndarray]:
        """(precision, recall) with OOD positive."""
        return _pr_curve(self.ood[:, ::-1], self.id_[:, ::-1])

    @cached_property
    def pr_in(self) -> tuple[np.ndarray, np.ndarray]:
        """(precision, recall) with ID positive (the score negated)."""
        return _pr_curve(self.id_, self.ood)


def _score_groups(score: np.ndarray) -> tuple[np.ndarray, int]:
    """Each sample's index among the distinct scores (ascending), and how many there are."""
    distinct, group = np.unique(score, return_inverse=True)
    return group.ravel(), len(distinct)


def _trapezoid(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Trapezoid area along the last axis, as numpy (and sklearn's `auc`) compute it; x monotone."""
    area = (np.diff(x, axis=-1) * (y[..., 1:] + y[..., :-1]) / 2.0).sum(axis=-1)
    return np.abs(area)


def _pr_curve(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's precision_recall_curve (reversed, with the final (recall 0, precision 1) point) per row.

    `pos`/`neg` are weighted counts per distinct score, ordered from the most positive-looking score down.
    A leading threshold that no resampled point reaches (tp + fp = 0) gets precision 1, which adds no area
    (sklearn never sees such a threshold; unit weights never produce one).
    """
    tps, fps = np.cumsum(pos, axis=-1), np.cumsum(neg, axis=-1)
    ps = tps + fps
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(ps > 0, tps / ps, 1.0)
        recall = tps / tps[:, -1:]
    ones, zeros = np.ones((len(pos), 1)), np.zeros((len(pos), 1))
    return (np.concatenate([precision[:, ::-1], ones], axis=1),
            np.concatenate([recall[:, ::-1], zeros], axis=1))


def _auroc(c: Counts) -> np.ndarray:
    fpr, tpr = c.roc
    return _trapezoid(fpr, tpr)


def _aupr_out(c: Counts) -> np.ndarray:
    precision, recall = c.pr_out
    return _trapezoid(recall, precision)


def _aupr_in(c: Counts) -> np.ndarray:
    precision, recall = c.pr_in
    return _trapezoid(recall, precision)


def _average_precision(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    return -np.sum(np.diff(recall, axis=1) * precision[:, :-1], axis=1)


def _ap_out(c: Counts) -> np.ndarray:
    return _average_precision(*c.pr_out)


def _ap_in(c: Counts) -> np.ndarray:
    return _average_precision(*c.pr_in)


def _first_reaching(fraction: np.ndarray) -> np.ndarray:
    """Index of the first column where a row's cumulative fraction reaches TPR_LEVEL."""
    return np.argmax(fraction >= TPR_LEVEL, axis=1)


def _fpr_at_95tpr_id(c: Counts) -> np.ndarray:
    """ID positive: smallest threshold t keeping >= 95% of ID (score <= t); fraction of OOD with score <= t."""
    id_kept = np.cumsum(c.id_, axis=1) / c.id_.sum(axis=1, keepdims=True)
    ood_kept = np.cumsum(c.ood, axis=1) / c.ood.sum(axis=1, keepdims=True)
    return np.take_along_axis(ood_kept, _first_reaching(id_kept)[:, None], axis=1)[:, 0]


def _fpr_at_95tpr_ood(c: Counts) -> np.ndarray:
    """OOD positive (OpenOOD v1.5): threshold flagging >= 95% of OOD; fraction of ID flagged."""
    fpr, tpr = c.roc
    return np.take_along_axis(fpr, _first_reaching(tpr)[:, None], axis=1)[:, 0]


def _detection_error(c: Counts) -> np.ndarray:
    fpr, tpr = c.roc
    return 0.5 * np.min(fpr + 1 - tpr, axis=1)


OOD_METRICS: dict[str, Callable[[Counts], np.ndarray]] = {
    "auroc": _auroc,
    "aupr_in": _aupr_in,
    "aupr_out": _aupr_out,
    "ap_in": _ap_in,
    "ap_out": _ap_out,
    "fpr_at_95tpr_id": _fpr_at_95tpr_id,
    "fpr_at_95tpr_ood": _fpr_at_95tpr_ood,
    "detection_error": _detection_error,
}

SPECS = (
    MetricSpec("auroc", True, 0.0, 1.0, "P(score_ood > score_id) + ½ P(tie); OOD positive, score higher = more OOD."),
    MetricSpec("aupr_in", True, 0.0, 1.0, "trapezoid area under precision-recall with ID positive (score negated)."),
    MetricSpec("aupr_out", True, 0.0, 1.0, "trapezoid area under precision-recall with OOD positive."),
    MetricSpec("ap_in", True, 0.0, 1.0, "step-wise average precision with ID positive (score negated)."),
    MetricSpec("ap_out", True, 0.0, 1.0, "step-wise average precision with OOD positive."),
    MetricSpec("fpr_at_95tpr_id", False, 0.0, 1.0, "fraction of OOD samples accepted at the smallest threshold that "
               "keeps 95% of ID samples (ODIN/Energy papers' FPR@95)."),
    MetricSpec("fpr_at_95tpr_ood", False, 0.0, 1.0, "fraction of ID samples flagged at the threshold that flags 95% "
               "of OOD samples (OpenOOD v1.5)."),
    MetricSpec("detection_error", False, 0.0, 0.5,
               "min over thresholds of ½(P_ID(flagged) + P_OOD(not flagged))."),
)
assert [spec.name for spec in SPECS] == list(OOD_METRICS)


def _checked(score: np.ndarray, is_ood: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    score, is_ood = np.asarray(score, np.float64), np.asarray(is_ood, bool)
    if score.shape != is_ood.shape or score.ndim != 1:
        raise DataError(f"scores {score.shape} and OOD flags {is_ood.shape} must be 1-D arrays of one length")
    if is_ood.all() or not is_ood.any():
        raise DataError("OOD metrics need both ID and OOD samples; check that neither set is empty")
    if not np.isfinite(score).all():
        raise DataError(f"{int((~np.isfinite(score)).sum())} OOD scores are not finite; check the detector")
    return score, is_ood


def ood_metric(name: str, score: np.ndarray, is_ood: np.ndarray) -> float:
    """One metric of OOD_METRICS on `score` (higher = more OOD) with `is_ood` flags."""
    score, is_ood = _checked(score, is_ood)
    return float(OOD_METRICS[name](Counts.of(score, is_ood))[0])


def _metric_fn(name: str) -> Callable[[np.ndarray, np.ndarray], float]:
    def fn(score: np.ndarray, is_ood: np.ndarray) -> float:
        return ood_metric(name, score, is_ood)

    fn.__name__, fn.__doc__ = name, f"`{name}` of `score` (higher = more OOD) against `is_ood` (definitions card)."
    return fn


auroc, aupr_in, aupr_out, ap_in, ap_out, fpr_at_95tpr_id, fpr_at_95tpr_ood, detection_error = (
    _metric_fn(name) for name in OOD_METRICS)


def bootstrap_counts(score: np.ndarray, is_ood: np.ndarray, n_boot: int, id_seed: tuple,
                     ood_seed: tuple) -> Iterator[Counts]:
    """Yield the Counts of chunks of replicates that resample the ID samples (stream `id_seed`) and the OOD samples
    (stream `ood_seed`) separately. Tasks sharing one ID set and `id_seed` share the ID resamples, so their
    replicates can be averaged into a bootstrap of a mean over OOD sets."""
    group, n_groups = _score_groups(score)
    id_group, ood_group = group[~is_ood], group[is_ood]
    rows = chunk_rows(len(score))
    for id_draws, ood_draws in zip(resample_indices(len(id_group), n_boot, *id_seed, "id", rows=rows),
                                   resample_indices(len(ood_group), n_boot, *ood_seed, "ood", rows=rows), strict=True):
        # column-major (B, G), so the metrics' sums over G add in the order they always have: same bits per replicate
        yield Counts(np.asfortranarray(counts(id_group[id_draws], n_groups)),
                     np.asfortranarray(counts(ood_group[ood_draws], n_groups)))


def ood_metric_rows(score: np.ndarray, is_ood: np.ndarray, id_seed: tuple, ood_seed: tuple,
                    n_boot: int = N_BOOT) -> list[dict]:
    """Rows {metric, value, ci_low, ci_high, n, replicates, paired}: every OOD metric with a percentile bootstrap
    95% interval (ID and OOD resampled separately, B = n_boot); its replicates (rounded to 1e-6) are also `paired`:
    the ID resamples are the run's shared ones, so a summary can bootstrap means over OOD sets from them."""
    score, is_ood = _checked(score, is_ood)
    point = Counts.of(score, is_ood)
    replicates: dict[str, list[np.ndarray]] = {name: [] for name in OOD_METRICS}
    for chunk in bootstrap_counts(score, is_ood, n_boot, id_seed, ood_seed):
        for name, fn in OOD_METRICS.items():
            replicates[name].append(fn(chunk))
    rows = []
    for name, fn in OOD_METRICS.items():
        draws = np.concatenate(replicates[name])
        low, high = np.nanpercentile(draws, [2.5, 97.5])
        kept = np.round(draws, 6).tolist()
        rows.append({"metric": name, "value": float(fn(point)[0]), "ci_low": float(low), "ci_high": float(high),
                     "n": len(score), "replicates": kept, "paired": kept})
    return rows

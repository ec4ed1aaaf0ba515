"""Classification and calibration metrics (definitions card, ../shared/reference/definitions.md).

Every metric takes resampling weights `w` of shape (B, N) and returns B values, so one call gives the point
estimate (w = ones) and a whole bootstrap chunk. Inputs are probabilities `probs` (N, K) and `labels` (N,).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import sparse
from scipy.special import log_softmax

N_BINS = 15
LOG_FLOOR = np.log(1e-12)  # nll clips p_y at 1e-12 only so that a zero probability gives a finite loss


def equal_width_bins(confidence: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """Bin index of each confidence: [b/n, (b+1)/n) and a closed last bin [(n-1)/n, 1]."""
    return np.clip(np.floor(confidence * n_bins).astype(np.int64), 0, n_bins - 1)


@dataclass(frozen=True)
class Predictions:
    """Softmax outputs with the labels they are judged against."""

    log_probs: np.ndarray
    labels: np.ndarray

    @classmethod
    def from_logits(cls, logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> Predictions:
        return cls(log_softmax(np.asarray(logits, np.float64) / temperature, axis=1), np.asarray(labels))

    @cached_property
    def probs(self) -> np.ndarray:
        return np.exp(self.log_probs)

    @cached_property
    def pred(self) -> np.ndarray:
        return self.log_probs.argmax(axis=1)

    @cached_property
    def confidence(self) -> np.ndarray:
        return self.probs[np.arange(len(self.labels)), self.pred]

    @cached_property
    def correct(self) -> np.ndarray:
        return (self.pred == self.labels).astype(np.float64)

    @cached_property
    def nll(self) -> np.ndarray:
        return -np.maximum(self.log_probs[np.arange(len(self.labels)), self.labels], LOG_FLOOR)

    @cached_property
    def brier(self) -> np.ndarray:
        onehot = np.eye(self.probs.shape[1])[self.labels]
        return ((self.probs - onehot) ** 2).sum(axis=1)


def _mean(values: np.ndarray, w: np.ndarray) -> np.ndarray:
    return (w @ values) / w.sum(axis=1)


def _binned_gaps(gap: np.ndarray, bins: np.ndarray, n_bins: int, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin weighted sums of `gap` and weighted counts, each (B, n_bins)."""
    onehot = sparse.csr_matrix((np.ones(len(bins)), (np.arange(len(bins)), bins)), shape=(len(bins), n_bins))
    return np.asarray((onehot.T @ (w * gap).T).T), np.asarray((onehot.T @ w.T).T)


def accuracy(p: Predictions, w: np.ndarray) -> np.ndarray:
    return _mean(p.correct, w)


def nll(p: Predictions, w: np.ndarray) -> np.ndarray:
    return _mean(p.nll, w)


def brier_sum(p: Predictions, w: np.ndarray) -> np.ndarray:
    return _mean(p.brier, w)


def ece_equal_width(p: Predictions, w: np.ndarray) -> np.ndarray:
    sums, _ = _binned_gaps(p.correct - p.confidence, equal_width_bins(p.confidence), N_BINS, w)
    return np.abs(sums).sum(axis=1) / w.sum(axis=1)


def mce(p: Predictions, w: np.ndarray) -> np.ndarray:
    sums, counts = _binned_gaps(p.correct - p.confidence, equal_width_bins(p.confidence), N_BINS, w)
    with np.errstate(invalid="ignore", divide="ignore"):
        gaps = np.where(counts > 0, np.abs(sums) / counts, -np.inf)
    return gaps.max(axis=1)


def ece_equal_mass(p: Predictions, w: np.ndarray) -> np.ndarray:
    """15 bins of (as nearly as possible) equal counts, cut on the confidences sorted ascending (stable)."""
    order = np.argsort(p.confidence, kind="stable")
    gap = (p.correct - p.confidence)[order]
    out = np.empty(len(w))
    for r, counts in enumerate(w[:, order].astype(np.int64)):
        expanded = np.repeat(gap, counts)
        m = len(expanded)
        size, extra = divmod(m, N_BINS)
        starts = np.cumsum([0] + [size + (b < extra) for b in range(N_BINS - 1)])
        starts = starts[starts < m]
        out[r] = np.abs(np.add.reduceat(expanded, starts)).sum() / m
    return out


def classwise_ece(p: Predictions, w: np.ndarray) -> np.ndarray:
    """Mean over classes k of the equal-width ECE of p_k against 1[y = k] (static calibration error)."""
    n, k = p.probs.shape
    target = np.eye(k)[p.labels]
    columns = (np.arange(k)[None, :] * N_BINS + equal_width_bins(p.probs)).ravel()
    rows = np.repeat(np.arange(n), k)
    z = sparse.csr_matrix(((target - p.probs).ravel(), (rows, columns)), shape=(n, k * N_BINS))
    sums = np.asarray((z.T @ w.T).T).reshape(len(w), k, N_BINS)
    return np.abs(sums).sum(axis=2).mean(axis=1) / w.sum(axis=1)


METRICS: dict[str, Callable[[Predictions, np.ndarray], np.ndarray]] = {
    "acc": accuracy,
    "nll": nll,
    "brier_sum": brier_sum,
    "ece_15_equal_width": ece_equal_width,
    "ece_15_equal_mass": ece_equal_mass,
    "mce": mce,
    "classwise_ece": classwise_ece,
}
TEMPERATURE_INVARIANT = {"acc"}


def reliability_table(p: Predictions, n_bins: int = N_BINS) -> list[dict]:
    """Per equal-width bin: edges, count, mean confidence, accuracy, gap (the data of a reliability diagram)."""
    bins = equal_width_bins(p.confidence, n_bins)
    rows = []
    for b in range(n_bins):
        mask = bins == b
        count = int(mask.sum())
        conf = float(p.confidence[mask].mean()) if count else float("nan")
        acc = float(p.correct[mask].mean()) if count else float("nan")
        rows.append({"bin_low": b / n_bins, "bin_high": (b + 1) / n_bins, "count": count,
                     "confidence": conf, "accuracy": acc, "gap": acc - conf})
    return rows

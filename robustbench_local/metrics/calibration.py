"""Classification and calibration metrics (definitions card, ../shared/reference/definitions.md).

Every metric reads `Weighted` predictions: softmax outputs (N, K) with labels (N,) under resampling weights `w` of
shape (B, N), and returns B values, so one call gives the point estimate (w = ones) and a whole chunk of bootstrap
replicates. The metrics of one chunk share its weighted sums of the per-sample columns (one matrix product).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import sparse
from scipy.special import log_softmax

from .contract import MetricSpec, temperature_scaled

N_BINS = 15
LOG_FLOOR = np.log(1e-12)  # nll clips p_y at 1e-12 only so that a zero probability gives a finite loss
MASS_BLOCK = 16  # samples per block when locating the equal-mass cuts in a resampled sequence
# Predictions.columns: correctness, nll, Brier score, then a - c in the sample's equal-width bin, then 1 in that bin
CORRECT, NLL, BRIER = 0, 1, 2
BIN_GAPS, BIN_COUNTS = slice(3, 3 + N_BINS), slice(3 + N_BINS, 3 + 2 * N_BINS)


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
        diff = self.probs.copy()
        diff[np.arange(len(self.labels)), self.labels] -= 1.0
        return np.square(diff, out=diff).sum(axis=1)

    @cached_property
    def columns(self) -> np.ndarray:
        """(N, 3 + 2 N_BINS) per-sample columns whose weighted sums the metrics use (layout: CORRECT, NLL, BRIER,
        BIN_GAPS, BIN_COUNTS), zeros outside each sample's own bin."""
        rows, bins = np.arange(len(self.labels)), equal_width_bins(self.confidence)
        columns = np.zeros((len(self.labels), 3 + 2 * N_BINS))
        columns[:, CORRECT], columns[:, NLL], columns[:, BRIER] = self.correct, self.nll, self.brier
        columns[rows, BIN_GAPS.start + bins] = self.correct - self.confidence
        columns[rows, BIN_COUNTS.start + bins] = 1.0
        return columns

    @cached_property
    def mass_order(self) -> tuple[np.ndarray, np.ndarray]:
        """Sample indices by ascending confidence (stable), the order equal-mass bins are cut in, and a - c in that
        order; padded to whole blocks of MASS_BLOCK with index 0 and a gap of 0 (ece_equal_mass zeroes its weights)."""
        order = np.argsort(self.confidence, kind="stable")
        pad = -len(order) % MASS_BLOCK
        return np.r_[order, np.zeros(pad, order.dtype)], np.r_[(self.correct - self.confidence)[order], np.zeros(pad)]

    @cached_property
    def classwise_columns(self) -> sparse.csr_matrix:
        """(N, K + K N_BINS) sparse: 1[y_i = k] in column k, then 1[y_i = k] - p_ik in column K + k N_BINS + bin of
        every entry outside the first equal-width bin (p_ik >= 1/15: a few per sample, as probabilities sum to 1)."""
        n, k = self.probs.shape
        rows, classes = np.nonzero(self.probs >= 0.99 / N_BINS)  # candidates; the bin rule decides below
        bins = equal_width_bins(self.probs[rows, classes])
        rows, classes, bins = rows[bins > 0], classes[bins > 0], bins[bins > 0]
        upper = (classes == self.labels[rows]) - self.probs[rows, classes]
        return sparse.csr_matrix((np.r_[np.ones(n), upper], (np.r_[np.arange(n), rows],
                                                            np.r_[self.labels, k + classes * N_BINS + bins])),
                                 shape=(n, k + k * N_BINS))


@dataclass(frozen=True)
class Weighted:
    """Predictions under resampling weights `w` (B, N): one weighted data set per row of `w`."""

    p: Predictions
    w: np.ndarray

    @cached_property
    def total(self) -> np.ndarray:
        return self.w.sum(axis=1)

    @cached_property
    def sums(self) -> np.ndarray:
        """(B, 3 + 2 N_BINS): weighted sums of Predictions.columns."""
        return self.w @ self.p.columns


def accuracy(x: Weighted) -> np.ndarray:
    return x.sums[:, CORRECT] / x.total


def nll(x: Weighted) -> np.ndarray:
    return x.sums[:, NLL] / x.total


def brier_sum(x: Weighted) -> np.ndarray:
    return x.sums[:, BRIER] / x.total


def ece_equal_width(x: Weighted) -> np.ndarray:
    return np.abs(x.sums[:, BIN_GAPS]).sum(axis=1) / x.total


def mce(x: Weighted) -> np.ndarray:
    sums, counts = x.sums[:, BIN_GAPS], x.sums[:, BIN_COUNTS]
    with np.errstate(invalid="ignore", divide="ignore"):
        gaps = np.where(counts > 0, np.abs(sums) / counts, -np.inf)
    return gaps.max(axis=1)


def _count_at_most(rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For each row of `rows` (nondecreasing, >= 0) how many entries are <= each of that row's `values` (<= its last
    entry): one search over the rows laid end to end, each shifted above the one before."""
    shift = np.arange(len(rows))[:, None] * (rows[:, -1:].max() + 1)
    found = np.searchsorted((rows + shift).ravel(), (values + shift).ravel(), side="right").reshape(values.shape)
    return found - np.arange(len(rows))[:, None] * rows.shape[1]


def ece_equal_mass(x: Weighted) -> np.ndarray:
    """15 bins of (as nearly as possible) equal counts, cut on the confidences sorted ascending (stable).

    Integer weights repeat each sample that many times and the bins cut the repeated sequence, so copies of one
    sample may straddle a cut. A bin's sum of gaps is the difference of the sequence's prefix sums at its cuts,
    located first among blocks of MASS_BLOCK samples, then within the block holding the cut.
    """
    order, gap = x.p.mass_order
    b, n = x.w.shape
    if n == 0:
        return np.full(b, np.nan)
    copies = x.w[:, order]
    copies[:, n:] = 0.0  # the padding holds no sample
    blocks = copies.reshape(b, -1, MASS_BLOCK)
    block_ends = np.cumsum(blocks.sum(axis=2), axis=1)  # sequence length after each block
    block_sums = np.cumsum(np.einsum("ijk,jk->ij", blocks, gap.reshape(-1, MASS_BLOCK)), axis=1)  # its sum there
    m = block_ends[:, -1]
    size, extra = np.divmod(m, N_BINS)
    j = np.arange(1, N_BINS)
    cuts = size[:, None] * j + np.minimum(j, extra[:, None])  # (b, N_BINS - 1): first positions of bins 1, 2, ...
    block = np.minimum(_count_at_most(block_ends, cuts), block_ends.shape[1] - 1)  # whose copies reach past the cut
    columns = block[..., None] * MASS_BLOCK + np.arange(MASS_BLOCK)  # (b, N_BINS - 1, MASS_BLOCK): its samples
    c, g = copies[np.arange(b)[:, None, None], columns], gap[columns]
    before = np.maximum(block - 1, 0)
    base_ends = np.where(block > 0, np.take_along_axis(block_ends, before, axis=1), 0.0)[..., None]
    base_sums = np.where(block > 0, np.take_along_axis(block_sums, before, axis=1), 0.0)[..., None]
    ends = np.concatenate([base_ends, base_ends + np.cumsum(c, axis=2)], axis=2)  # after 0, 1, ... of its samples
    sums = np.concatenate([base_sums, base_sums + np.cumsum(c * g, axis=2)], axis=2)
    k = (ends[..., 1:] <= cuts[..., None]).sum(axis=2, keepdims=True)  # its samples wholly before the cut
    g = np.concatenate([g, np.zeros((b, N_BINS - 1, 1))], axis=2)
    at_cut = (np.take_along_axis(sums, k, axis=2) + (cuts[..., None] - np.take_along_axis(ends, k, axis=2))
              * np.take_along_axis(g, k, axis=2))[..., 0]
    bin_sums = np.diff(np.concatenate([np.zeros((b, 1)), at_cut, block_sums[:, -1:]], axis=1), axis=1)
    return np.abs(bin_sums).sum(axis=1) / m


def classwise_ece(x: Weighted) -> np.ndarray:
    """Mean over classes k of the equal-width ECE of p_k against 1[y = k] (static calibration error).

    Most p_ik fall into the first bin, so that bin's sum is each class's total minus its other bins."""
    k = x.p.probs.shape[1]
    sums = np.asarray((x.p.classwise_columns.T @ x.w.T).T)
    totals = sums[:, :k] - x.w @ x.p.probs  # (B, K): weighted sums of 1[y = k] - p_k over all samples
    binned = sums[:, k:].reshape(len(x.w), k, N_BINS)
    binned[:, :, 0] = totals - binned.sum(axis=2)
    return np.abs(binned).sum(axis=2).mean(axis=1) / x.total


METRICS: dict[str, Callable[[Weighted], np.ndarray]] = {
    "acc": accuracy,
    "nll": nll,
    "brier_sum": brier_sum,
    "ece_15_equal_width": ece_equal_width,
    "ece_15_equal_mass": ece_equal_mass,
    "mce": mce,
    "classwise_ece": classwise_ece,
}
TEMPERATURE_INVARIANT = {"acc"}
_DECLARED = (
    MetricSpec("acc", True, 0.0, 1.0, "mean of 1[argmax p = y] over the samples."),
    MetricSpec("nll", False, 0.0, float("inf"), "mean −log p_y (natural log; p_y clipped at 1e-12)."),
    MetricSpec("brier_sum", False, 0.0, 2.0, "mean Σ_k (p_k − 1[k = y])² (not halved)."),
    MetricSpec("ece_15_equal_width", False, 0.0, 1.0,
               "Σ_b |B_b|/N · |acc_b − conf_b| over 15 equal-width confidence bins (last bin closed)."),
    MetricSpec("ece_15_equal_mass", False, 0.0, 1.0,
               "the same ECE over 15 bins of (as nearly as possible) equal counts, cut on the sorted confidences."),
    MetricSpec("mce", False, 0.0, 1.0, "max over non-empty equal-width bins of |acc_b − conf_b|."),
    MetricSpec("classwise_ece", False, 0.0, 1.0,
               "mean over classes k of the equal-width ECE of p_k against 1[y = k] (static calibration error)."),
)
SPECS = (*_DECLARED, *(temperature_scaled(s) for s in _DECLARED if s.name not in TEMPERATURE_INVARIANT))


def metric_values(p: Predictions, w: np.ndarray, names: Iterable[str] = METRICS) -> dict[str, np.ndarray]:
    """The named METRICS of `p` under weights `w` (B, N), B values each."""
    x = Weighted(p, w)
    return {name: METRICS[name](x) for name in names}


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

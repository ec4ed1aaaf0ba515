"""Selective prediction: how many errors remain when the model abstains on its least confident inputs.

The confidence is the top-class softmax probability (MSP; `_ts`: at the run's temperature). Ranking the samples by
descending confidence, r(k) = (errors among the k most confident) / k is the selective risk at coverage k/M (M: the
total weight). The curve is read at every integer coverage count k = 1..M, so a sample of weight 3 (drawn three times
by the bootstrap) counts as three samples: weights are resampling counts.

Ties: samples of equal confidence are averaged over their orders, so the error count E(k) grows linearly across a
tied group (its expected value under a uniformly random tie break); without ties and with unit weights this is exactly
the sorted-order curve of Geifman & El-Yaniv (2017) and torch-uncertainty. The misclassification AUROC counts a tied
(correct, wrong) pair as one half. Every metric reads `Weighted` predictions and returns one value per row of `w`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
from scipy.special import digamma

from .calibration import Weighted
from .contract import MetricSpec, temperature_scaled

RISK_COVERAGES = (0.8, 0.9, 0.95)
COVERAGE_RISKS = (0.01, 0.05)


@dataclass(frozen=True)
class Groups:
    """The risk-coverage curve's data: per group of tied confidences, by descending confidence, its weight `mass` and
    its weight of errors `errors`, both (B, G); `upto` are their cumulative sums up to each group (inclusive)."""

    mass: np.ndarray
    errors: np.ndarray

    @property
    def total(self) -> np.ndarray:
        return self.mass.sum(axis=1)

    @property
    def total_errors(self) -> np.ndarray:
        return self.errors.sum(axis=1)

    @property
    def upto(self) -> tuple[np.ndarray, np.ndarray]:
        return np.cumsum(self.mass, axis=1), np.cumsum(self.errors, axis=1)

    @property
    def rate(self) -> np.ndarray:
        """Error share of each group (the slope of E(k) across it; 0 for a group of no weight)."""
        return np.divide(self.errors, self.mass, out=np.zeros_like(self.mass), where=self.mass > 0)


_last: tuple[Weighted | None, Groups | None] = (None, None)  # the last Weighted seen and its groups (the metrics of
# one chunk share them; one tuple, read and replaced whole, so threads at worst recompute)


def groups(x: Weighted) -> Groups:
    """Per-group weights of `x` (one sort of the confidences, then a sum over each tied run)."""
    global _last
    seen, found = _last
    if seen is x:
        return found
    confidence = x.p.confidence
    order = np.argsort(-confidence, kind="stable")
    ranked = confidence[order]
    starts = np.r_[0, np.flatnonzero(np.diff(ranked) != 0) + 1]
    w = x.w[:, order]
    found = Groups(np.add.reduceat(w, starts, axis=1), np.add.reduceat(w * (1.0 - x.p.correct[order]), starts, axis=1))
    _last = (x, found)
    return found


def _harmonic(n: np.ndarray) -> np.ndarray:
    """H(n) = 1 + 1/2 + ... + 1/n (0 for n = 0)."""
    return digamma(np.asarray(n, np.float64) + 1.0) + np.euler_gamma


def _empty(x: Weighted) -> np.ndarray | None:
    return np.full(len(x.w), np.nan) if x.w.shape[1] == 0 else None


def _first_risk(g: Groups) -> np.ndarray:
    """r(1): the error share of the first group of positive weight."""
    first = np.argmax(g.mass > 0, axis=1)
    return np.take_along_axis(g.rate, first[:, None], axis=1)[:, 0]


def _risk_sum(g: Groups) -> np.ndarray:
    """Sum of r(k) over k = 1..M: across a group E(k) = a + b k, so its terms sum to a (H(upto) - H(before)) + b m."""
    m_upto, e_upto = g.upto
    m_before, e_before = m_upto - g.mass, e_upto - g.errors
    b = g.rate
    return ((e_before - m_before * b) * (_harmonic(m_upto) - _harmonic(m_before)) + b * g.mass).sum(axis=1)


def _trapezoid(total_sum: np.ndarray, first: np.ndarray, last: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Trapezoid area under points k/M, k = 1..M, whose values sum to `total_sum`, over the span 1 - 1/M (as
    torch-uncertainty normalises it); NaN for M < 2."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(m >= 2, (total_sum - (first + last) / 2) / (m - 1), np.nan)


def aurc(x: Weighted) -> np.ndarray:
    """Area under the risk-coverage curve: trapezoids over r(k), k = 1..M, normalised by 1 - 1/M."""
    if (nan := _empty(x)) is not None:
        return nan
    g = groups(x)
    m = g.total
    return _trapezoid(_risk_sum(g), _first_risk(g), g.total_errors / m, m)


def _optimal_risk_sum(m: np.ndarray, errors: np.ndarray) -> np.ndarray:
    """Sum of r*(k) for the ranking that puts every correct sample first: E*(k) = max(0, k - A), A = M - errors."""
    a = m - errors
    return errors - a * (_harmonic(m) - _harmonic(a))


def eaurc(x: Weighted) -> np.ndarray:
    """Excess AURC: AURC minus the AURC of the optimal ranking (all correct samples first) at the same accuracy."""
    if (nan := _empty(x)) is not None:
        return nan
    g = groups(x)
    m, errors = g.total, g.total_errors
    optimal_first = (m - errors < 1).astype(np.float64)  # r*(1) is 1 only when fewer than one sample is correct
    with np.errstate(invalid="ignore", divide="ignore"):
        excess = _risk_sum(g) - _optimal_risk_sum(m, errors) - (_first_risk(g) - optimal_first) / 2
        return np.where(m >= 2, excess / (m - 1), np.nan)


def augrc(x: Weighted) -> np.ndarray:
    """Area under the generalised risk-coverage curve (Traub et al. 2024): trapezoids over E(k) / M, k = 1..M."""
    if (nan := _empty(x)) is not None:
        return nan
    g = groups(x)
    m = g.total
    _, e_upto = g.upto
    e_before = e_upto - g.errors
    error_sum = (e_before * g.mass + g.rate * g.mass * (g.mass + 1) / 2).sum(axis=1)  # sum of E(k), k = 1..M
    with np.errstate(invalid="ignore", divide="ignore"):
        return _trapezoid(error_sum / m, _first_risk(g) / m, g.total_errors / m, m)


def _count_at(coverage: float, m: np.ndarray) -> np.ndarray:
    """ceil(coverage M), the count of samples accepted at that coverage (rounded first so that 0.9 * 70 is 63)."""
    return np.ceil(np.round(coverage * m, 9))


def risk_at_coverage(x: Weighted, coverage: float) -> np.ndarray:
    """Selective risk at `coverage`: r(k) for k = ceil(coverage M)."""
    if (nan := _empty(x)) is not None:
        return nan
    g = groups(x)
    k = _count_at(coverage, g.total)
    m_upto, e_upto = g.upto
    at = np.minimum((m_upto < k[:, None]).sum(axis=1), g.mass.shape[1] - 1)[:, None]  # the group holding the k-th
    pick = partial(np.take_along_axis, indices=at, axis=1)
    errors = pick(e_upto - g.errors)[:, 0] + (k - pick(m_upto - g.mass)[:, 0]) * pick(g.rate)[:, 0]
    return errors / k


def coverage_at_risk(x: Weighted, risk: float) -> np.ndarray:
    """Largest coverage k/M whose selective risk r(k) is at most `risk`; NaN when no coverage reaches it.

    Across a group r(k) = b + a/k is monotone, so its largest admissible k is the group's end or, where r rises
    across the group, floor(-a / (b - risk))."""
    if (nan := _empty(x)) is not None:
        return nan
    g = groups(x)
    m_upto, e_upto = g.upto
    m_before, b = m_upto - g.mass, g.rate
    a = (e_upto - g.errors) - m_before * b
    with np.errstate(invalid="ignore", divide="ignore"):
        end_ok = (e_upto / m_upto <= risk) & (g.mass > 0)
        inside = np.floor(np.where((b > risk) & (a < 0), -a / (b - risk), 0.0) + 1e-9)
        best = np.where(end_ok, m_upto, np.where(inside > np.maximum(m_before, 0.0), inside, 0.0))
        found = best.max(axis=1)
        return np.where(found >= 1, found / g.total, np.nan)


def misclassification_auroc(x: Weighted) -> np.ndarray:
    """P(a correct sample is more confident than a wrong one), ties counted 1/2; NaN without both kinds."""
    if (nan := _empty(x)) is not None:
        return nan
    g = groups(x)
    correct = g.mass - g.errors
    _, e_upto = g.upto
    wrong_below = g.total_errors[:, None] - e_upto  # error weight of less confident groups
    with np.errstate(invalid="ignore", divide="ignore"):
        return (correct * (wrong_below + g.errors / 2)).sum(axis=1) / (correct.sum(axis=1) * g.total_errors)


def _percent(value: float) -> str:
    return f"{round(value * 100):d}"


METRICS: dict[str, Callable[[Weighted], np.ndarray]] = {
    "aurc": aurc,
    "eaurc": eaurc,
    "augrc": augrc,
    **{f"selective_risk_at_{_percent(c)}": partial(risk_at_coverage, coverage=c) for c in RISK_COVERAGES},
    **{f"coverage_at_risk_{_percent(r)}": partial(coverage_at_risk, risk=r) for r in COVERAGE_RISKS},
    "misclassification_auroc": misclassification_auroc,
}

_DEFINITIONS = {
    "aurc": (False, "area under the risk-coverage curve of MSP ranking: mean over coverages k/N of the error rate of "
                    "the k most confident (trapezoids, span 1 - 1/N; tied confidences averaged over their orders)"),
    "eaurc": (False, "AURC minus the AURC of the optimal ranking (every correct sample first) at the same accuracy"),
    "augrc": (False, "area under the generalised risk-coverage curve (Traub et al. 2024): mean over coverages k/N of "
                     "(errors among the k most confident) / N"),
    **{f"selective_risk_at_{_percent(c)}": (False, f"error rate of the ceil({c:g} N) most confident predictions "
                                                   f"(abstaining on the rest)") for c in RISK_COVERAGES},
    **{f"coverage_at_risk_{_percent(r)}": (True, f"largest share k/N of most confident predictions whose error rate "
                                                 f"is at most {r:g} (NaN if none)") for r in COVERAGE_RISKS},
    "misclassification_auroc": (True, "AUROC of MSP separating correct from wrong predictions (ties count 1/2)"),
}

_RAW = tuple(MetricSpec(name, higher, 0.0, 1.0, definition) for name, (higher, definition) in _DEFINITIONS.items())
METRIC_SPECS: tuple[MetricSpec, ...] = (*_RAW, *(temperature_scaled(s) for s in _RAW))

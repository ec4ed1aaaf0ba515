"""Split conformal prediction sets (Vovk et al. 2005; Angelopoulos & Bates 2021), fitted once on the clean held-out
split and judged on every condition: does a 1 - alpha guarantee on clean data survive corruptions and attacks?

Scores (higher = less conforming), on the raw softmax p of a sample whose label is y:
- LAC (threshold, Sadinle et al. 2019): s = 1 - p_y; the set holds every label k with 1 - p_k <= q.
- APS (Romano et al. 2020), randomised: s = (mass of the labels ranked before y) + u p_y, labels ranked by descending
  probability (ties by class index); the set holds every k with (mass before k) + u p_k <= q. u is uniform on [0, 1),
  drawn per sample from its id alone (`aps_noise`), so sets do not depend on batch size, order or shards.
The threshold q is the finite-sample conformal quantile: the ceil((n + 1)(1 - alpha))-th smallest of the n held-out
scores, i.e. the empirical quantile at level ceil((n + 1)(1 - alpha)) / n (+inf, every label, when that exceeds 1).
The bootstrap intervals of the per-condition numbers resample the evaluated samples with q held fixed.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import softmax

from ..seeding import derive_seed
from .bootstrap import N_BOOT, bootstrap_with_replicates, metric_row
from .contract import MetricSpec

ALPHAS = (0.1, 0.05)
SCORES = ("lac", "aps")
STRATA = (("0to1", 0, 1), ("2to3", 2, 3), ("4plus", 4, math.inf))  # set sizes of the size-stratified coverage
QUANTILE = "ceil((n + 1)(1 - alpha))-th smallest held-out score (finite-sample level ceil((n + 1)(1 - alpha)) / n)"


def aps_noise(ids: Sequence) -> np.ndarray:
    """The APS randomisation u in [0, 1) of each sample, a function of its id only."""
    return np.array([(derive_seed("aps", i) >> 10) / 2.0**53 for i in ids], np.float64)


def _mass_before(probs: np.ndarray) -> np.ndarray:
    """(N, K): the probability mass of the labels ranked before each label (descending probability, ties by index)."""
    order = np.argsort(-probs, axis=1, kind="stable")
    ranked = np.take_along_axis(probs, order, axis=1)
    before = np.empty_like(probs)
    np.put_along_axis(before, order, np.cumsum(ranked, axis=1) - ranked, axis=1)
    return before


def label_scores(probs: np.ndarray, u: np.ndarray, score: str) -> np.ndarray:
    """(N, K) score of every label as if it were the true one (the set at q is {k: score_k <= q})."""
    if score == "lac":
        return 1.0 - probs
    return _mass_before(probs) + u[:, None] * probs


def conformal_quantile(scores: np.ndarray, alpha: float) -> float:
    """The ceil((n + 1)(1 - alpha))-th smallest score; +inf when that rank exceeds n (too few scores for 1 - alpha)."""
    n = len(scores)
    rank = math.ceil(round((n + 1) * (1 - alpha), 9))
    return float(np.sort(scores)[rank - 1]) if rank <= n else math.inf


@dataclass(frozen=True)
class ConformalFit:
    """Thresholds by score name, one per level of `alphas`, fitted on `n` held-out samples."""

    alphas: tuple[float, ...]
    thresholds: dict[str, list[float]]
    n: int

    @classmethod
    def fit(cls, logits: np.ndarray, labels: np.ndarray, ids: Sequence, alphas: Sequence[float]) -> ConformalFit:
        probs, rows = softmax(np.asarray(logits, np.float64), axis=1), np.arange(len(labels))
        u = aps_noise(ids)
        true = {s: label_scores(probs, u, s)[rows, labels] for s in SCORES}
        return cls(tuple(alphas), {s: [conformal_quantile(true[s], a) for a in alphas] for s in SCORES}, len(labels))

    def to_dict(self) -> dict:
        return {"alphas": list(self.alphas), "thresholds": self.thresholds, "n": self.n, "quantile": QUANTILE}

    @classmethod
    def from_dict(cls, d: dict) -> ConformalFit:
        return cls(tuple(d["alphas"]), {s: list(map(float, q)) for s, q in d["thresholds"].items()}, d["n"])


def level_name(alpha: float) -> str:
    """The coverage level's name part: alpha 0.1 -> "90", 0.05 -> "95", 0.025 -> "97.5"."""
    return f"{(1 - alpha) * 100:.6g}"


def metric_name(what: str, alpha: float, score: str) -> str:
    return f"conformal_{what}_{level_name(alpha)}" + ("" if score == "lac" else f"_{score}")


def conformal_metrics(logits: np.ndarray, labels: np.ndarray, ids: Sequence, fit: ConformalFit, seed_parts: tuple,
                      n_boot: int = N_BOOT) -> list[dict]:
    """Rows {metric, value, ci_low, ci_high, n} per level and score: coverage, mean set size, coverage gap
    (1 - alpha - coverage) and the coverage among samples whose set size falls in each stratum."""
    n = len(labels)
    if n == 0:
        return []
    probs, rows = softmax(np.asarray(logits, np.float64), axis=1), np.arange(n)
    u = aps_noise(ids)
    columns = [np.ones(n)]  # per-sample columns; each metric is a ratio of two of their weighted sums
    ratios: dict[str, tuple[int, int]] = {}  # metric -> (numerator column, denominator column)
    gaps: dict[str, tuple[str, float]] = {}  # coverage gap -> (its coverage metric, the target 1 - alpha)
    for score in SCORES:
        scores = label_scores(probs, u, score)
        for alpha, q in zip(fit.alphas, fit.thresholds[score], strict=True):
            sets = scores <= q
            covered, size = sets[rows, labels].astype(np.float64), sets.sum(axis=1)
            columns += [covered, size.astype(np.float64)]
            coverage = metric_name("coverage", alpha, score)
            ratios[coverage] = (len(columns) - 2, 0)
            ratios[metric_name("set_size", alpha, score)] = (len(columns) - 1, 0)
            gaps[metric_name("coverage_gap", alpha, score)] = (coverage, 1 - alpha)
            for stratum, low, high in STRATA:
                inside = ((size >= low) & (size <= high)).astype(np.float64)
                columns += [covered * inside, inside]
                ratios[metric_name(f"coverage_size{stratum}", alpha, score)] = (len(columns) - 2, len(columns) - 1)
    matrix = np.stack(columns, axis=1)

    def statistic(w: np.ndarray) -> dict[str, np.ndarray]:
        sums = w @ matrix
        with np.errstate(invalid="ignore", divide="ignore"):
            out = {name: sums[:, num] / sums[:, den] for name, (num, den) in ratios.items()}
        return {**out, **{gap: target - out[coverage] for gap, (coverage, target) in gaps.items()}}

    counts = matrix.sum(axis=0)
    denominator = {**{name: den for name, (_, den) in ratios.items()}, **dict.fromkeys(gaps, 0)}
    return [metric_row(name, value, draws, int(counts[denominator[name]]))
            for name, (value, draws) in bootstrap_with_replicates(statistic, n, *seed_parts, n_boot=n_boot).items()]


def metric_specs(alphas: Sequence[float] = ALPHAS) -> tuple[MetricSpec, ...]:
    """The declarations of the conformal metrics at the levels `alphas`."""
    specs = []
    for score in SCORES:
        how = "LAC (threshold on 1 - p_y)" if score == "lac" else "APS (randomised adaptive prediction sets)"
        for alpha in alphas:
            level, where = level_name(alpha), f"split conformal {how} sets fitted on the clean held-out split at " \
                                             f"{1 - alpha:.4g} with the {QUANTILE}"
            specs += [
                MetricSpec(metric_name("coverage", alpha, score), True, 0.0, 1.0,
                           f"share of samples whose true label is in the {where}"),
                MetricSpec(metric_name("set_size", alpha, score), False, 0.0, math.inf,
                           f"mean number of labels in the {where}"),
                MetricSpec(metric_name("coverage_gap", alpha, score), False, -alpha, 1 - alpha,
                           f"target {level}% minus the empirical coverage of the {where} (> 0: under-covers)"),
                *(MetricSpec(metric_name(f"coverage_size{stratum}", alpha, score), True, 0.0, 1.0,
                             f"coverage among the samples whose set holds {low} to {high} labels ({where})")
                  for stratum, low, high in STRATA)]
    return tuple(specs)


def spec_of(name: str) -> MetricSpec | None:
    """The declaration of a conformal metric at any level, read from its name (None if `name` is not one)."""
    parts = name.split("_")
    levels = [p for p in parts[2:] if p.replace(".", "", 1).isdigit()] if name.startswith("conformal_") else []
    if not levels or not 0 < float(levels[0]) < 100:
        return None
    return {s.name: s for s in metric_specs((1 - float(levels[0]) / 100,))}.get(name)

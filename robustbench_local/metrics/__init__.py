"""Classification/calibration metrics with bootstrap intervals, and temperature scaling."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .bootstrap import N_BOOT, bootstrap, bootstrap_replicates, resample_weights
from .calibration import METRICS, TEMPERATURE_INVARIANT, Predictions, reliability_table
from .temperature import bound_notice, fit_temperature, nll_at, temperature_at_bound


def classification_metrics(logits: np.ndarray, labels: np.ndarray, temperature: float | None,
                           seed_parts: tuple, n_boot: int = N_BOOT) -> list[dict]:
    """Rows {metric, value, ci_low, ci_high, n}: every metric raw, and with `_ts` at the given temperature."""
    variants = [("", 1.0)] + ([("_ts", temperature)] if temperature is not None else [])
    metrics = {}
    for suffix, t in variants:
        p = Predictions.from_logits(logits, labels, t)
        metrics |= {name + suffix: (lambda w, fn=fn, p=p: fn(p, w))
                    for name, fn in METRICS.items() if not (suffix and name in TEMPERATURE_INVARIANT)}
    results = bootstrap(metrics, len(labels), *seed_parts, n_boot=n_boot)
    return [{"metric": name, "value": v, "ci_low": lo, "ci_high": hi, "n": len(labels)}
            for name, (v, lo, hi) in results.items()]


ALIASES = {"robust_acc": "acc"}  # robust accuracy is the accuracy of attack records (clean errors count as wrong)


def weighted_metric(logits: np.ndarray, labels: np.ndarray, name: str,
                    temperature: float | None) -> Callable[[np.ndarray], np.ndarray] | None:
    """`w -> values` for a classification metric name (with optional `_ts`), or None if it is not one."""
    base, scaled = (name[:-3], True) if name.endswith("_ts") else (name, False)
    base = ALIASES.get(base, base)
    if base not in METRICS or (scaled and temperature is None):
        return None
    p = Predictions.from_logits(logits, labels, temperature if scaled else 1.0)
    return lambda w: METRICS[base](p, w)


__all__ = [
    "METRICS",
    "N_BOOT",
    "Predictions",
    "bootstrap",
    "bootstrap_replicates",
    "bound_notice",
    "classification_metrics",
    "fit_temperature",
    "nll_at",
    "reliability_table",
    "resample_weights",
    "temperature_at_bound",
    "weighted_metric",
]

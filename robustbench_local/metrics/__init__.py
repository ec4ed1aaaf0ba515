"""Classification/calibration metrics with bootstrap intervals, and temperature scaling."""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from .bootstrap import (
    CHUNK_DRAWS,
    CHUNK_ROWS,
    N_BOOT,
    Statistic,
    bootstrap,
    bootstrap_replicates,
    bootstrap_with_replicates,
    metric_row,
    percentile_interval,
    resample_indices,
    resample_weights,
)
from .calibration import METRICS as CALIBRATION_METRICS
from .calibration import TEMPERATURE_INVARIANT, Predictions, Weighted, metric_values, reliability_table
from .selective import METRICS as SELECTIVE_METRICS
from .temperature import bound_notice, fit_temperature, nll_at, temperature_at_bound

METRICS = {**CALIBRATION_METRICS, **SELECTIVE_METRICS}  # every metric of softmax predictions, by name


def predictions(logits: np.ndarray, labels: np.ndarray, temperature: float | None) -> dict[str, Predictions]:
    """The softmax outputs by metric-name suffix: raw under "", at the given temperature under "_ts" (if any)."""
    variants = {"": Predictions.from_logits(logits, labels)}
    if temperature is not None:
        variants["_ts"] = Predictions.from_logits(logits, labels, temperature)
    return variants


def statistic_of(variants: Mapping[str, Predictions], names: Iterable[str]) -> Statistic:
    """Weights -> values of the named metrics, a name's suffix ("nll", "nll_ts") choosing the variant it reads."""
    wanted = {suffix: [name.removesuffix(suffix) for name in names if name.endswith("_ts") == bool(suffix)]
              for suffix in variants}

    def statistic(w: np.ndarray) -> dict[str, np.ndarray]:
        weighted = {suffix: Weighted(p, w) for suffix, p in variants.items()}
        return {name + suffix: METRICS[name](x) for suffix, x in weighted.items() for name in wanted[suffix]}

    return statistic


def classification_metrics(variants: Mapping[str, Predictions], seed_parts: tuple,
                           n_boot: int = N_BOOT) -> list[dict]:
    """Rows {metric, value, ci_low, ci_high, n, replicates}: every metric of every variant (see `predictions`), its
    name suffixed."""
    names = [name + suffix for suffix in variants for name in METRICS if not (suffix and name in TEMPERATURE_INVARIANT)]
    n = len(variants[""].labels)
    results = bootstrap_with_replicates(statistic_of(variants, names), n, *seed_parts, n_boot=n_boot)
    return [metric_row(name, value, draws, n) for name, (value, draws) in results.items()]


__all__ = [
    "CHUNK_DRAWS",
    "CHUNK_ROWS",
    "METRICS",
    "N_BOOT",
    "Predictions",
    "Statistic",
    "Weighted",
    "bootstrap",
    "bootstrap_replicates",
    "bootstrap_with_replicates",
    "bound_notice",
    "classification_metrics",
    "fit_temperature",
    "metric_row",
    "metric_values",
    "nll_at",
    "percentile_interval",
    "predictions",
    "reliability_table",
    "resample_indices",
    "resample_weights",
    "statistic_of",
    "temperature_at_bound",
]

"""Percentile bootstrap over samples, expressed as resampling weights so metrics vectorise over replicates."""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import numpy as np

from ..seeding import numpy_rng

N_BOOT = 1000
CHUNK = 100


def resample_weights(n: int, n_boot: int, *seed_parts: object) -> Iterator[np.ndarray]:
    """Yield (b, n) float arrays of resampling counts (each row sums to n), `n_boot` rows in all."""
    rng = numpy_rng("bootstrap", *seed_parts)
    for start in range(0, n_boot, CHUNK):
        b = min(CHUNK, n_boot - start)
        draws = rng.integers(0, n, size=(b, n)) + np.arange(b)[:, None] * n
        yield np.bincount(draws.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)


Interval = tuple[float, float, float]


def bootstrap_replicates(metrics: Mapping[str, Callable[[np.ndarray], np.ndarray]], n: int, *seed_parts: object,
                         n_boot: int = N_BOOT) -> dict[str, np.ndarray]:
    """The `n_boot` replicates of each `metric(weights) -> (b,)`, all metrics over the same resamples of `n` samples."""
    replicates: dict[str, list[np.ndarray]] = {name: [] for name in metrics}
    for w in resample_weights(n, n_boot, *seed_parts):
        for name, metric in metrics.items():
            replicates[name].append(metric(w))
    return {name: np.concatenate(draws) for name, draws in replicates.items()}


def bootstrap(metrics: Mapping[str, Callable[[np.ndarray], np.ndarray]], n: int, *seed_parts: object,
              n_boot: int = N_BOOT) -> dict[str, Interval]:
    """(estimate, 2.5th, 97.5th percentile) of each `metric(weights) -> (b,)` over the same `n_boot` resamples."""
    if n == 0:
        return {name: (float("nan"),) * 3 for name in metrics}
    out = {}
    for name, draws in bootstrap_replicates(metrics, n, *seed_parts, n_boot=n_boot).items():
        low, high = np.nanpercentile(draws, [2.5, 97.5])
        out[name] = (float(metrics[name](np.ones((1, n)))[0]), float(low), float(high))
    return out

"""Percentile bootstrap over samples, expressed as resampling weights so metrics vectorise over replicates."""
from __future__ import annotations

from collections.abc import Callable, Iterator

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


def bootstrap(metric: Callable[[np.ndarray], np.ndarray], n: int, *seed_parts: object,
              n_boot: int = N_BOOT) -> tuple[float, float, float]:
    """(estimate, 2.5th, 97.5th percentile) of `metric(weights) -> (b,)` over `n_boot` resamples of n samples."""
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    estimate = float(metric(np.ones((1, n)))[0])
    replicates = np.concatenate([metric(w) for w in resample_weights(n, n_boot, *seed_parts)])
    low, high = np.nanpercentile(replicates, [2.5, 97.5])
    return estimate, float(low), float(high)

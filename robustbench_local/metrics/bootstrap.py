"""Percentile bootstrap over samples, expressed as resampling weights so metrics vectorise over replicates.

Replicate r draws n sample indices with replacement: the r-th block of n draws of `Generator.integers(0, n)` from
the generator seeded by ("bootstrap", *seed parts). The generator's stream does not depend on how the draws are
split into calls, so replicates come in chunks of any number of rows with the same values; a chunk holds at most
CHUNK_ROWS replicates and about CHUNK_DRAWS draws, which bounds the memory whatever n and B.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import numpy as np

from ..seeding import numpy_rng

N_BOOT = 1000
CHUNK_DRAWS = 1 << 20  # draws per chunk of replicates (8 MiB of float64 weights)
CHUNK_ROWS = 100  # and at most this many replicates (the metrics' replicates x classes arrays stay small too)


def chunk_rows(n: int) -> int:
    """Replicates per chunk for n samples."""
    return max(1, min(CHUNK_ROWS, CHUNK_DRAWS // max(n, 1)))


def resample_indices(n: int, n_boot: int, *seed_parts: object, rows: int | None = None) -> Iterator[np.ndarray]:
    """Yield (b, n) int arrays, row r the indices drawn for one replicate; `n_boot` rows in all, `rows` per chunk."""
    rng = numpy_rng("bootstrap", *seed_parts)
    step = rows or chunk_rows(n)
    for start in range(0, n_boot, step):
        yield rng.integers(0, n, size=(min(step, n_boot - start), n))


def counts(draws: np.ndarray, n: int) -> np.ndarray:
    """(b, n) float array: how often each of n values occurs in each row of `draws`."""
    out = np.empty((len(draws), n))
    for row, d in zip(out, draws, strict=True):
        row[:] = np.bincount(d, minlength=n)
    return out


def resample_weights(n: int, n_boot: int, *seed_parts: object, rows: int | None = None) -> Iterator[np.ndarray]:
    """Yield (b, n) float arrays of resampling counts (each row sums to n), `n_boot` rows in all, `rows` per chunk."""
    for draws in resample_indices(n, n_boot, *seed_parts, rows=rows):
        yield counts(draws, n)


Interval = tuple[float, float, float]
Statistic = Callable[[np.ndarray], Mapping[str, np.ndarray]]  # weights (b, n) -> {metric name: its b values}


def bootstrap_replicates(statistic: Statistic, n: int, *seed_parts: object, n_boot: int = N_BOOT,
                         columns: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The `n_boot` replicates of every metric of `statistic`, all over the same resamples of `n` samples; with
    `columns`, sample i takes the weight drawn for index columns[i]."""
    replicates: dict[str, list[np.ndarray]] = {}
    for w in resample_weights(n, n_boot, *seed_parts):
        for name, values in statistic(w if columns is None else w[:, columns]).items():
            replicates.setdefault(name, []).append(values)
    return {name: np.concatenate(draws) for name, draws in replicates.items()}


def bootstrap(statistic: Statistic, n: int, *seed_parts: object, n_boot: int = N_BOOT) -> dict[str, Interval]:
    """(estimate, 2.5th, 97.5th percentile) of every metric of `statistic` over the same `n_boot` resamples."""
    with np.errstate(invalid="ignore", divide="ignore"):
        point = statistic(np.ones((1, n)))
    if n == 0:
        return {name: (float("nan"),) * 3 for name in point}
    out = {}
    for name, draws in bootstrap_replicates(statistic, n, *seed_parts, n_boot=n_boot).items():
        low, high = (np.nan, np.nan) if np.isnan(draws).all() else np.nanpercentile(draws, [2.5, 97.5])  # NaN: none
        out[name] = (float(point[name][0]), float(low), float(high))
    return out

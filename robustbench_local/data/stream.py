"""Parallel decode with bounded prefetch: worker threads decode the next batches while the model runs.

Threads, not processes: Pillow releases the GIL while it decodes and resizes, so threads decode JPEG/PNG as fast
as processes without copying every batch between processes (`python -m bench data` measures both side by side).
One pool per process, sized by `set_workers` (the CLI's `--data-workers`; default: the CPUs this process may use).
"""
from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

PREFETCH_BATCHES = 2  # batches decoded ahead of the one being consumed

_workers: int | None = None
_pool: ThreadPoolExecutor | None = None


def available_cpus() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def set_workers(n: int | None) -> None:
    """Decode threads for this process (None: the CPUs available)."""
    global _workers, _pool
    if n is not None and n < 1:
        from ..errors import SpecError

        raise SpecError(f"--data-workers must be at least 1, got {n}")
    if n != _workers and _pool is not None:
        _pool.shutdown(wait=False)
        _pool = None
    _workers = n


def workers() -> int:
    """Decode threads in use."""
    return _workers or available_cpus()


def batched(images: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """An in-memory array, `batch_size` images at a time."""
    return (images[i:i + batch_size] for i in range(0, len(images), batch_size))


def _get_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(workers(), thread_name_prefix="rbl-decode")
    return _pool


def prefetched(read: Callable[[np.ndarray], np.ndarray], blocks: list[np.ndarray]) -> Iterator[np.ndarray]:
    """`read(rows)` of each block in order; each block is split over the decode threads, and up to
    PREFETCH_BATCHES blocks are decoded ahead. An error of `read` surfaces when its block is reached."""
    n = workers()
    if n == 1:
        yield from (read(rows) for rows in blocks)
        return
    pool = _get_pool()
    pending: deque[list[Future]] = deque()

    def submit(rows: np.ndarray) -> list[Future]:
        parts = np.array_split(rows, min(n, len(rows))) if len(rows) else [rows]
        return [pool.submit(read, part) for part in parts]

    upcoming = iter(blocks)
    try:
        for rows in upcoming:
            pending.append(submit(rows))
            if len(pending) > PREFETCH_BATCHES:
                yield _join(pending.popleft())
        while pending:
            yield _join(pending.popleft())
    finally:
        for futures in pending:
            for future in futures:
                future.cancel()


def _join(futures: list[Future]) -> np.ndarray:
    parts = [f.result() for f in futures]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)

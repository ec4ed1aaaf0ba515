"""Streams corrupted batches: per-sample seeds, bounded memory, CPU backends fanned out over processes."""
from __future__ import annotations

import atexit
import multiprocessing
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from robustbench_local.errors import RunError
from robustbench_local.seeding import derive_seed

from .backends import get_backend

CHUNK_PIXELS = 64 * 32 * 32  # pixels per job sent to a worker process (64 images at 32 px, 1 at 224 px)
_POOLS: dict[int, ProcessPoolExecutor] = {}


def default_workers() -> int:
    """Worker processes used when not told: the CPUs this process may use (at most 16)."""
    return max(1, min(16, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def sample_seeds(run_seed: int, ids: np.ndarray, corruption: str, severity: int) -> np.ndarray:
    """One 32-bit stream seed per sample, keyed by (run seed, sample id, corruption, severity) only."""
    return np.array([derive_seed(run_seed, "corruption", corruption, severity, i) & 0xFFFFFFFF for i in ids.tolist()],
                    dtype=np.uint32)


def _pool(workers: int) -> ProcessPoolExecutor:
    """A process pool kept for the life of the process (workers keep imports and frost textures loaded)."""
    if workers not in _POOLS:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        _POOLS[workers] = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method))
    return _POOLS[workers]


@atexit.register
def shutdown_pools() -> None:
    """Stop every worker process this module started."""
    while _POOLS:
        _POOLS.popitem()[1].shutdown(cancel_futures=True)


def _chunks(images: np.ndarray, seeds: np.ndarray, backend, corruption: str, severity: int, params: str,
            workers: int) -> Iterator[np.ndarray]:
    """Corrupted chunks (about CHUNK_PIXELS each) in order; at most 2 x workers chunks are in flight."""
    size = max(1, CHUNK_PIXELS // (images.shape[1] * images.shape[2]))
    starts = range(0, len(images), size)
    if workers <= 1:
        for s in starts:
            yield backend(images[s:s + size], corruption, severity, seeds[s:s + size], params)
        return
    pool, pending = _pool(workers), deque[Future]()
    for s in starts:
        pending.append(pool.submit(backend, images[s:s + size], corruption, severity, seeds[s:s + size], params))
        if len(pending) >= 2 * workers:
            yield _collect(pending.popleft(), workers)
    while pending:
        yield _collect(pending.popleft(), workers)


def _collect(future: Future, workers: int) -> np.ndarray:
    """The chunk a worker returned; a dead worker (e.g. killed for memory) drops the pool and says what to do."""
    try:
        return future.result()
    except BrokenProcessPool:
        _POOLS.pop(workers, None)
        raise RunError("a corruption worker process died (out of memory?); rerun with fewer "
                       "--corruption-workers or a smaller --batch-size (finished tasks are kept)") from None


def corrupted_batches(images: np.ndarray, corruption: str, severity: int, seeds: np.ndarray, params: str,
                      backend: str = "reference", workers: int | None = None,
                      batch_size: int = 256) -> Iterator[np.ndarray]:
    """Yield `images` corrupted in order, `batch_size` at a time; inputs are assumed valid (see `api`)."""
    info = get_backend(backend)
    fn = info.load()
    if not info.meta["processes"]:
        for s in range(0, len(images), batch_size):
            yield fn(images[s:s + batch_size], corruption, severity, seeds[s:s + batch_size], params)
        return
    workers = default_workers() if workers is None else workers
    buffer: list[np.ndarray] = []
    held = 0
    for chunk in _chunks(images, seeds, fn, corruption, severity, params, workers):
        buffer.append(chunk)
        held += len(chunk)
        while held >= batch_size:
            joined = np.concatenate(buffer)
            yield joined[:batch_size]
            buffer, held = [joined[batch_size:]], held - batch_size
    if held:
        yield np.concatenate(buffer)

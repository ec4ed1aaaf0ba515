"""Corruption step: images/s of a full 15 x 5 sweep vs a plain imagecorruptions loop; peak memory vs data size."""
from __future__ import annotations

import os
import time
import tracemalloc

import numpy as np
from robustbench_local.corruptions.compat import imagecorruptions
from robustbench_local.corruptions.engine import corrupted_batches, default_workers, sample_seeds
from robustbench_local.corruptions.names import COMMON, SEVERITIES


def _plain_loop(images: np.ndarray) -> None:
    corrupt = imagecorruptions().corrupt
    for name in COMMON:
        for s in SEVERITIES:
            for image in images:
                corrupt(image, severity=s, corruption_name=name)


def _engine(images: np.ndarray, workers: int, params: str = "imagenet-c") -> None:
    ids = np.arange(len(images))
    for name in COMMON:
        for s in SEVERITIES:
            for _ in corrupted_batches(images, name, s, sample_seeds(0, ids, name, s), params, workers=workers):
                pass


def _sweep_rate(fn, images: np.ndarray, *args) -> float:
    start = time.perf_counter()
    fn(images, *args)
    return len(images) * len(COMMON) * len(SEVERITIES) / (time.perf_counter() - start)


def _peak_streaming(n: int, workers: int) -> float:
    """Peak MiB allocated by the parent while streaming n 32-px images through one corruption (input excluded)."""
    images = np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    seeds = sample_seeds(0, np.arange(n), "contrast", 3)
    tracemalloc.start()
    for _ in corrupted_batches(images, "contrast", 3, seeds, "imagenet-c", workers=workers, batch_size=256):
        pass
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    rng = np.random.default_rng(0)
    workers = default_workers()
    imagecorruptions()
    _engine(rng.integers(0, 256, (workers, 32, 32, 3), dtype=np.uint8), workers)  # start the pool untimed
    print(f"full sweep = 15 common corruptions x 5 severities, imagenet-c parameters, {workers} worker processes "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs: other work on the machine caps the gain)")
    for size, n in ((32, 256), (224, 3)):
        images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
        plain = _sweep_rate(_plain_loop, images)
        inproc = _sweep_rate(_engine, images, 0)
        pooled = _sweep_rate(_engine, images, workers)
        print(f"{size:>3} px, {n} images: plain imagecorruptions loop {plain:8.1f} img/s | engine in-process "
              f"{inproc:8.1f} img/s ({inproc / plain:.2f}x) | engine {workers} processes {pooled:8.1f} img/s "
              f"({pooled / plain:.2f}x)")
    images = rng.integers(0, 256, (256, 32, 32, 3), dtype=np.uint8)
    print(f" 32 px, 256 images, cifar-10-c parameters (no imagecorruptions peer): engine in-process "
          f"{_sweep_rate(_engine, images, 0, 'cifar-10-c'):8.1f} img/s | engine {workers} processes "
          f"{_sweep_rate(_engine, images, workers, 'cifar-10-c'):8.1f} img/s")
    small, large = 2_000, 8_000
    for w in (0, workers):
        a, b = _peak_streaming(small, w), _peak_streaming(large, w)
        print(f"peak memory streaming contrast/3 (workers={w}): {small} images {a:.2f} MiB, {large} images {b:.2f} MiB "
              f"(ratio {b / a:.2f}; materialising all corrupted images would take {small * 3072 / 2**20:.1f} / "
              f"{large * 3072 / 2**20:.1f} MiB)")

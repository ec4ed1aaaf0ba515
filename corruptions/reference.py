"""The reference backend: imagecorruptions (through `compat`) per image, each on its own seeded stream.

Worker-safe: imports neither torch nor robustbench_local, so process-pool workers start fast.
"""
from __future__ import annotations

import numpy as np

from . import cifar
from .compat import imagecorruptions, stream


def corrupt_one(image: np.ndarray, corruption: str, severity: int, seed: int, params: str) -> np.ndarray:
    """One uint8 HxWx3 image corrupted with `params` ('imagenet-c' or 'cifar-10-c') on stream `seed`."""
    with stream(seed):
        if params == "cifar-10-c":
            return cifar.corrupt(image, severity, corruption)
        return imagecorruptions().corrupt(image, severity=severity, corruption_name=corruption)


def corrupt_batch(images: np.ndarray, corruption: str, severity: int, seeds: np.ndarray, params: str) -> np.ndarray:
    """uint8 (N, H, W, 3) -> uint8 (N, H, W, 3); image i uses stream `seeds[i]` (a 32-bit seed)."""
    out = np.empty_like(images)
    for i, (image, seed) in enumerate(zip(images, seeds)):
        out[i] = corrupt_one(image, corruption, severity, int(seed), params)
    return out

"""The library entry point for corrupting images: input checks, parameter-set choice, seeding, backend."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from robustbench_local.errors import DataError

from .engine import corrupted_batches, sample_seeds
from .names import check_corruption, check_params, check_severity, default_params

MIN_SIDE = 32


def check_images(images: np.ndarray) -> None:
    """Raise DataError unless `images` is uint8 (N, H, W, 3) with H, W >= 32."""
    if not isinstance(images, np.ndarray):
        raise DataError(f"images must be a numpy array, got {type(images).__name__}")
    if images.dtype != np.uint8:
        raise DataError(f"images must be uint8 (0..255), got {images.dtype}; convert with to_uint8 or "
                        "(x * 255).round().astype(np.uint8)")
    if images.ndim == 3 or (images.ndim == 4 and images.shape[-1] == 1):
        raise DataError(f"images of shape {images.shape} look grayscale; corruptions need RGB (N, H, W, 3): "
                        "repeat the channel, e.g. np.repeat(x.reshape(*x.shape[:3], 1), 3, axis=-1)")
    if images.ndim != 4 or images.shape[-1] != 3:
        raise DataError(f"images must have shape (N, H, W, 3), got {images.shape}")
    check_size(images.shape[1], images.shape[2])


def check_size(height: int, width: int) -> None:
    """Raise DataError unless images of height x width px can be corrupted."""
    if min(height, width) < MIN_SIDE:
        raise DataError(f"images are {height}x{width} px; corruptions need at least {MIN_SIDE}x{MIN_SIDE} "
                        "(imagecorruptions' limit): upscale them first")


def resolve_params(params: str | None, size: tuple[int, int], notify: Callable[[str], None] | None = None) -> str:
    """`params` checked, or (when None/'auto') the set chosen by the image size (H, W), announced through
    `notify`."""
    if params not in (None, "auto"):
        return check_params(params)
    chosen = default_params(*size)
    if notify is not None:
        notify(f"notice: corruption parameters {chosen!r} chosen for {size[0]}x{size[1]} px images "
               "(pass --params imagenet-c|cifar-10-c to choose)")
    return chosen


def corrupt_images(images: np.ndarray, corruption: str, severity: int, seed: int = 0, ids: np.ndarray | None = None,
                   params: str | None = None, backend: str = "fast", workers: int | None = 0,
                   notify: Callable[[str], None] | None = None) -> np.ndarray:
    """`images` (uint8 NHWC, >= 32 px) corrupted; image i uses the stream of (seed, ids[i], corruption, severity).

    `ids` default to the positions 0..N-1; `params` None picks the set by image size; `backend` is 'fast' (batched
    torch) or 'reference' (imagecorruptions), whose `workers` 0 runs in this process, None uses every CPU.
    """
    check_corruption(corruption)
    check_severity(severity)
    check_images(images)
    params = resolve_params(params, images.shape[1:3], notify)
    ids = np.arange(len(images)) if ids is None else np.asarray(ids)
    if ids.shape != (len(images),):
        raise DataError(f"{len(images)} images but ids of shape {ids.shape}; give one id per image")
    seeds = sample_seeds(seed, ids, corruption, severity)
    batches = list(corrupted_batches(images, corruption, severity, seeds, params, backend, workers))
    return np.concatenate(batches) if batches else images.copy()

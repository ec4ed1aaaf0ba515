"""The `fast` backend: all 19 corruptions as batched torch operations on (N, C, H, W) tensors on any device.

Each corruption is `fn(x, c, gens, params)`: x float (N, 3, H, W) in [0, 1] (uint8 / 255), c the severity's
parameters; it returns uint8 images or values on the 0..255 scale, which `corrupt_tensor` clips and truncates.
Sample i draws every random number from its own torch.Generator seeded with `seeds[i]` (the engine's per-sample
stream seed), and no kernel's arithmetic depends on the batch (see `ops`), so outputs never depend on batch size or
order, bit for bit. Deterministic corruptions reproduce the reference to within rounding; random ones reproduce
its algorithm and statistics (not its numpy random stream).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from . import blur, color, digital, noise, spatter, weather
from .ops import generators, truncate_uint8
from .params import severity_params

FUNCTIONS = {name: getattr(module, name) for module, names in (
    (noise, ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise")),
    (blur, ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur", "gaussian_blur")),
    (weather, ("snow", "frost", "fog")),
    (spatter, ("spatter",)),
    (color, ("brightness", "contrast", "saturate")),
    (digital, ("elastic_transform", "pixelate", "jpeg_compression")),
) for name in names}


def corrupt_tensor(images: torch.Tensor, corruption: str, severity: int, seeds: Sequence[int],
                   params: str) -> torch.Tensor:
    """uint8 (N, 3, H, W) on any device -> corrupted uint8 (N, 3, H, W) on the same device."""
    if len(images) == 0:
        return images.clone()
    x = images.float().div_(255)
    out = FUNCTIONS[corruption](x, severity_params(params, corruption, severity), generators(seeds, images.device),
                                params)
    return out if out.dtype == torch.uint8 else truncate_uint8(out)


def corrupt_batch(images: np.ndarray, corruption: str, severity: int, seeds: np.ndarray, params: str) -> np.ndarray:
    """The backend boundary (see `corruptions.backends`): uint8 NHWC numpy in and out, computed on the CPU."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    return corrupt_tensor(x, corruption, severity, [int(s) for s in seeds], params).permute(0, 2, 3, 1).numpy()

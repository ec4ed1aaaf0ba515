"""Noise corruptions (gaussian, shot, impulse, speckle): `fn(x, c, gens, params)` with x float (N, 3, H, W) in [0, 1]
(x = uint8 / 255), returning the corrupted uint8 images (N, 3, H, W), contiguous; sample i draws from gens[i] in
(C, H, W) order whatever the memory layout of x."""
from __future__ import annotations

import torch

from . import poisson


def _per_sample(x: torch.Tensor, dtype: torch.dtype, gens: list[torch.Generator], fill: str) -> torch.Tensor:
    """A contiguous tensor shaped like x with row i filled in place by `fill` ('normal_' or 'random_') from gens[i]."""
    out = torch.empty(x.shape, dtype=dtype, device=x.device)
    for row, g in zip(out, gens):
        getattr(row, fill)(generator=g)
    return out


def _to_uint8(y: torch.Tensor) -> torch.Tensor:
    """clip(y, 0, 1) * 255 truncated to uint8 (in place on y; values in 0..255 truncate as the caller's floor)."""
    return y.clamp_(0, 1).mul_(255).to(torch.uint8)


def gaussian_noise(x, c, gens, params):
    return _to_uint8(_per_sample(x, x.dtype, gens, "normal_").mul_(c).add_(x))


def speckle_noise(x, c, gens, params):
    return _to_uint8(_per_sample(x, x.dtype, gens, "normal_").mul_(x).mul_(c).add_(x))


def shot_noise(x, c, gens, params):
    """Poisson(x * c) counts / c on the 0..255 scale, sampled exactly as the uint8 values (see `poisson`)."""
    return poisson.sample(poisson.shot_table(float(c), str(x.device)), x, gens, scale=255).to(torch.uint8)


def impulse_noise(x, c, gens, params):
    """skimage's s&p: each value flips with probability c, to 1 or 0 with equal odds. One uniform 31-bit integer r
    per value decides both: r / 2^31 below c / 2 is salt (255), below c pepper (0)."""
    r = _per_sample(x, torch.int32, gens, "random_")  # uniform on [0, 2^31)
    out = torch.empty(x.shape, dtype=torch.uint8, device=x.device).copy_(x * 255)  # = the input's uint8 values
    salt = (r < round(c * 2 ** 30)).to(torch.uint8).mul_(255)
    return out.mul_(r >= round(c * 2 ** 31)).add_(salt)  # arithmetic, not masked_fill: no branch per value

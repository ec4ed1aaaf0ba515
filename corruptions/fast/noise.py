"""Noise corruptions (gaussian, shot, impulse, speckle): `fn(x, c, gens, params)` with x float (N, 3, H, W) in [0, 1],
returning values on the 0..255 scale (the caller clips and truncates)."""
from __future__ import annotations

import torch

from . import poisson
from .ops import draw


def gaussian_noise(x, c, gens, params):
    return (x + draw(gens, lambda g: torch.randn(x.shape[1:], generator=g, device=x.device)) * c).clamp(0, 1) * 255


def speckle_noise(x, c, gens, params):
    noise = draw(gens, lambda g: torch.randn(x.shape[1:], generator=g, device=x.device))
    return (x + x * noise * c).clamp(0, 1) * 255


def shot_noise(x, c, gens, params):
    """Poisson(x * c) counts / c on the 0..255 scale, sampled exactly as the uint8 values (see `poisson`)."""
    return poisson.sample(poisson.shot_table(float(c), str(x.device)), x, gens, scale=255).to(torch.uint8)


def impulse_noise(x, c, gens, params):
    """skimage's s&p: each value flips with probability c, to 1 or 0 with equal odds."""
    u = draw(gens, lambda g: torch.rand((2, *x.shape[1:]), generator=g, device=x.device))
    flipped, salted = u[:, 0] <= c, u[:, 1] <= 0.5
    out = torch.where(flipped & salted, torch.ones_like(x), x)
    return torch.where(flipped & ~salted, torch.zeros_like(x), out) * 255

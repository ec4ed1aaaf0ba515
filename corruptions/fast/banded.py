"""scipy-style 1-D correlation along a long axis as block-banded matrix products: the output rows, `BLOCK` at a time,
are one small Toeplitz matrix times a window of the padded input, (BLOCK + taps - 1) / n of the dense matrix product's
work. Short axes fall back to `ops.filter1d`. Tensors are (N, C, H, W)."""
from __future__ import annotations

import functools

import numpy as np
import torch

from .ops import filter1d, gaussian_weights, pad

BLOCK = 16


@functools.lru_cache(maxsize=64)
def _toeplitz(weights: tuple[float, ...]) -> torch.Tensor:
    """(BLOCK, BLOCK + taps - 1) float64 matrix: row b holds the weights at columns b .. b + taps - 1."""
    m = torch.zeros(BLOCK, BLOCK + len(weights) - 1, dtype=torch.float64)
    for b in range(BLOCK):
        m[b, b:b + len(weights)] = torch.tensor(weights, dtype=torch.float64)
    return m


def _correlate_rows(x: torch.Tensor, weights: tuple[float, ...], mode: str) -> torch.Tensor:
    """Correlate along dim -2 (centred weights, border `mode`), BLOCK output rows per matrix product."""
    n, taps = x.shape[-2], len(weights)
    blocks = -(-n // BLOCK)
    r = (taps - 1) // 2
    padded = pad(x, x.dim() - 2, r, blocks * BLOCK - n + taps - 1 - r, mode)
    windows = padded.unfold(-2, BLOCK + taps - 1, BLOCK).transpose(-1, -2)  # (..., blocks, BLOCK + taps - 1, W)
    return (_toeplitz(weights).to(x) @ windows).flatten(-3, -2)[..., :n, :]


def correlate1d(x: torch.Tensor, weights: torch.Tensor, dim: int, mode: str) -> torch.Tensor:
    """`ops.filter1d` (dim 2 or 3), block-banded where the axis is at least 3 (BLOCK + taps - 1) long."""
    taps = tuple(weights.tolist())
    if x.shape[dim] < 3 * (BLOCK + len(taps) - 1):
        return filter1d(x, weights, dim, mode)
    if dim == 2:
        return _correlate_rows(x, taps, mode)
    return _correlate_rows(x.transpose(2, 3), taps, mode).transpose(2, 3)


def gaussian(x: torch.Tensor, sigma: float | tuple[float, float], mode: str, truncate: float) -> torch.Tensor:
    """`ops.gaussian` (scipy gaussian_filter over H and W) with `correlate1d`."""
    sy, sx = (sigma, sigma) if np.isscalar(sigma) else sigma
    if sy > 0:
        x = correlate1d(x, gaussian_weights(sy, truncate), 2, mode)
    if sx > 0:
        x = correlate1d(x, gaussian_weights(sx, truncate), 3, mode)
    return x

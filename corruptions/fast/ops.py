"""Batched torch building blocks for the fast backend: per-sample random draws, scipy-style padding, separable
filters with scipy/OpenCV border semantics, interpolation matrices, shifts. Tensors are (N, C, H, W)."""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch


def generators(seeds: Sequence[int], device: torch.device) -> list[torch.Generator]:
    """One torch.Generator per sample on `device`, seeded with that sample's 32-bit stream seed."""
    return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]


def draw(gens: list[torch.Generator], fn: Callable[[torch.Generator], torch.Tensor]) -> torch.Tensor:
    """Stack of `fn(g)` over the per-sample generators: sample i's numbers depend only on its own seed."""
    return torch.stack([fn(g) for g in gens])


def truncate_uint8(x: torch.Tensor) -> torch.Tensor:
    """Values on the 0..255 scale -> uint8 by clipping and truncation (as imagecorruptions' `np.uint8(...)`)."""
    return x.clamp(0, 255).to(torch.uint8)  # the cast truncates toward zero: floor, for values >= 0


@functools.lru_cache(maxsize=256)
def _pad_index(n: int, before: int, after: int, mode: str) -> np.ndarray:
    i = np.arange(-before, n + after)
    if mode == "nearest":  # a a a | a b c d | d d d
        return np.clip(i, 0, n - 1)
    if mode == "reflect":  # scipy 'reflect' / skimage: d c b a | a b c d | d c b a
        i = np.mod(i, 2 * n)
        return np.where(i >= n, 2 * n - 1 - i, i)
    if mode == "mirror":  # scipy 'mirror' = OpenCV BORDER_REFLECT_101: d c b | a b c d | c b a
        if n == 1:
            return np.zeros_like(i)
        i = np.mod(i, 2 * n - 2)
        return np.where(i >= n, 2 * n - 2 - i, i)
    raise ValueError(mode)


def pad(x: torch.Tensor, dim: int, before: int, after: int, mode: str) -> torch.Tensor:
    """`x` padded along `dim` with scipy-style border `mode` ('nearest', 'reflect', 'mirror')."""
    n = x.shape[dim]
    if max(before, after) >= n - 1:  # pads longer than one reflection: by index
        return x.index_select(dim, torch.as_tensor(_pad_index(n, before, after, mode), device=x.device))
    if mode == "nearest":
        edges = x.narrow(dim, 0, 1).repeat_interleave(before, dim), x.narrow(dim, n - 1, 1).repeat_interleave(after, dim)
    else:  # 'reflect' repeats the edge sample, 'mirror' does not
        skip = 0 if mode == "reflect" else 1
        edges = x.narrow(dim, skip, before).flip(dim), x.narrow(dim, n - after - skip, after).flip(dim)
    return torch.cat([edges[0], x, edges[1]], dim)


@functools.lru_cache(maxsize=256)
def _filter_matrix(n: int, weights: tuple[float, ...], mode: str) -> torch.Tensor:
    """(n, n) matrix of a 1-D correlation with `weights` (centred) including the border `mode` padding."""
    r = (len(weights) - 1) // 2
    index = _pad_index(n, r, len(weights) - 1 - r, mode)
    m = np.zeros((n, n))
    for k, wk in enumerate(weights):
        np.add.at(m, (np.arange(n), index[k:k + n]), wk)
    return torch.from_numpy(m)


def filter1d(x: torch.Tensor, weights: torch.Tensor, dim: int, mode: str) -> torch.Tensor:
    """Correlate (N, C, H, W) with 1-D `weights` along dim 2 or 3, border `mode`: short kernels as a weighted sum
    of shifted slices of the padded input, long ones (relative to the axis) as a banded matrix product."""
    n, taps = x.shape[dim], weights.tolist()
    if len(taps) * 8 > n:
        m = _filter_matrix(n, tuple(taps), mode).to(x)
        return m @ x if dim == 2 else x @ m.T
    r = (len(taps) - 1) // 2
    padded = pad(x, dim, r, len(taps) - 1 - r, mode)
    out = padded.narrow(dim, 0, n) * taps[0]
    for k in range(1, len(taps)):
        out.add_(padded.narrow(dim, k, n), alpha=taps[k])
    return out


def filter2d(x: torch.Tensor, kernel: torch.Tensor, mode: str = "mirror") -> torch.Tensor:
    """cv2.filter2D (correlation, anchor at the centre) on each channel with border `mode`: small kernels as a
    weighted sum of shifted slices, large ones by FFT."""
    kh, kw = kernel.shape
    h, w = x.shape[2:]
    padded = pad(pad(x, 2, kh // 2, kh - 1 - kh // 2, mode), 3, kw // 2, kw - 1 - kw // 2, mode)
    if kh * kw > 25:
        return correlate_fft(padded, kernel.to(x), h, w)
    taps = kernel.tolist()
    out = torch.zeros_like(x)
    for i in range(kh):
        for j in range(kw):
            if taps[i][j]:
                out.add_(padded[:, :, i:i + h, j:j + w], alpha=taps[i][j])
    return out


def fft_size(n: int) -> int:
    """Smallest 5-smooth integer >= n (2^a 3^b 5^c): FFT lengths with large prime factors are several times slower."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def correlate_fft(padded: torch.Tensor, kernel: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Valid correlation of `padded` (..., h + kh - 1, w + kw - 1) with `kernel` (broadcastable, ..., kh, kw)."""
    kh, kw = kernel.shape[-2:]
    size = (fft_size(padded.shape[-2]), fft_size(padded.shape[-1]))  # >= the padded size: no wrap-around
    spectrum = torch.fft.rfft2(padded, s=size) * torch.fft.rfft2(kernel.flip(-2, -1), s=size)
    return torch.fft.irfft2(spectrum, s=size)[..., kh - 1:kh - 1 + h, kw - 1:kw - 1 + w]


def gaussian_weights(sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """scipy.ndimage.gaussian_filter1d's kernel: radius int(truncate * sigma + 0.5), normalised."""
    radius = int(truncate * float(sigma) + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    w = torch.exp(-0.5 * t * t / float(sigma) ** 2)
    return w / w.sum()


def gaussian(x: torch.Tensor, sigma: float | tuple[float, float], mode: str = "nearest",
             truncate: float = 4.0) -> torch.Tensor:
    """skimage.filters.gaussian / scipy gaussian_filter over H and W (channels independent)."""
    sy, sx = (sigma, sigma) if np.isscalar(sigma) else sigma
    if sy > 0:
        x = filter1d(x, gaussian_weights(sy, truncate), 2, mode)
    if sx > 0:
        x = filter1d(x, gaussian_weights(sx, truncate), 3, mode)
    return x


def linear_zoom_matrix(n_in: int, n_out: int, start: int, count: int) -> torch.Tensor:
    """(count, n_in) rows of scipy.ndimage.zoom(order=1) of `n_in` samples to `n_out`, output rows start..start+count."""
    o = np.arange(start, start + count, dtype=np.float64)
    pos = o * (n_in - 1) / (n_out - 1) if n_out > 1 else np.zeros_like(o)
    lo = np.clip(np.floor(pos).astype(int), 0, n_in - 1)
    hi = np.clip(lo + 1, 0, n_in - 1)
    frac = pos - lo
    m = np.zeros((count, n_in))
    np.add.at(m, (np.arange(count), lo), 1 - frac)
    np.add.at(m, (np.arange(count), hi), frac)
    return torch.from_numpy(m)


def _sin_range(lo: float, hi: float) -> tuple[float, float]:
    """(min, max) of sin over the angles lo..hi degrees."""
    values = [math.sin(math.radians(lo)), math.sin(math.radians(hi))]
    values += [s for a, s in ((90, 1.0), (270, -1.0)) if any(lo <= a + 360 * k <= hi for k in (-1, 0, 1))]
    return min(values), max(values)


def _reach(width: int, unit: float, limit: int) -> int:
    """How far (pixels) the taps 0..width-1 along a direction component `unit` can reach, one pixel of margin."""
    return min(max(0, math.ceil((width - 1) * unit - 0.5) + 1), limit)


def motion_blur(x: torch.Tensor, radius: int, sigma: float, angle_deg: torch.Tensor,
                angle_range: tuple[float, float]) -> torch.Tensor:
    """imagecorruptions' numpy motion blur (one-sided Gaussian-weighted sum of edge-clamped shifted copies), one
    angle per sample (drawn from `angle_range`): the shifts become one sparse kernel per sample, as large as that
    range needs (the same for every batch), applied by FFT to the edge-padded image."""
    width = 2 * radius + 1
    k = torch.exp(-torch.arange(width, dtype=torch.float64, device=x.device) ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    rad = torch.deg2rad(angle_deg.double())[:, None]
    py, px = width * torch.sin(rad), width * torch.cos(rad)
    steps = torch.arange(width, dtype=torch.float64, device=x.device)[None]
    hyp = torch.hypot(py, px)
    # tap i reads x[r + a_i, c + b_i] (edge-clamped): the reference's shift by (dy, dx) = (-a_i, -b_i)
    a, b = torch.ceil(steps * py / hyp - 0.5).long(), torch.ceil(steps * px / hyp - 0.5).long()
    n, _, h, w = x.shape
    alive = ((a.abs() < h) & (b.abs() < w)).cumprod(1)  # the original stops once a shift leaves the image
    (s_lo, s_hi), (c_lo, c_hi) = _sin_range(*angle_range), _sin_range(angle_range[0] + 90, angle_range[1] + 90)
    top, bottom = _reach(width, -s_lo, h - 1), _reach(width, s_hi, h - 1)
    left, right = _reach(width, -c_lo, w - 1), _reach(width, c_hi, w - 1)
    a, b = a.clamp(-top, bottom), b.clamp(-left, right)  # only dead taps (weight 0) are moved
    kh, kw = top + bottom + 1, left + right + 1
    kernel = torch.zeros(n, kh * kw, dtype=torch.float64, device=x.device)
    kernel.scatter_add_(1, (top + a) * kw + (left + b), k[None] * alive)
    padded = pad(pad(x, 2, top, bottom, "nearest"), 3, left, right, "nearest")
    return correlate_fft(padded, kernel.view(n, 1, kh, kw).to(x), h, w)


def rot180(x: torch.Tensor) -> torch.Tensor:
    """np.rot90(x, k=2) over H and W."""
    return x.flip(2, 3)


def next_pow2(n: int) -> int:
    """Smallest power of two >= n (1 for n = 0)."""
    return 1 if n == 0 else 1 << (n - 1).bit_length()

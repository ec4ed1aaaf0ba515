"""Batched torch building blocks for the fast backend: per-sample random draws, per-image kernels, scipy-style
padding, separable filters with scipy/OpenCV border semantics, linear zooms, shifts. Tensors are (N, C, H, W).

Batch independence by construction: work on the whole batch is limited to element-wise operations that round once
(+, -, *, /, sqrt, floor, round, clamp, comparisons, min and max), gathers, and reductions that are exact (max, min,
sums of integers); their results do not depend on how a kernel splits the batch between threads or SIMD lanes.
Every other kernel (FFT, matrix product, grid sampling, linear algebra, transcendental functions) runs through
`per_image`, on tensors shaped as for that image alone. Multiplications and additions stay separate ops: a fused
multiply-add kernel may round once in its vector body and twice in its scalar tail.
"""
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


def per_image(fn: Callable[[torch.Tensor, int], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """torch.cat over i of fn(image i as a fresh (1, ...) tensor, i): for kernels whose algorithm or summation order
    may depend on the shape, the thread split or the memory they are given, so each image is computed exactly as it
    would be alone."""
    return torch.cat([fn(x[i:i + 1].clone(), i) for i in range(len(x))])


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


def filter1d(x: torch.Tensor, weights: torch.Tensor, dim: int, mode: str) -> torch.Tensor:
    """Correlate (N, C, H, W) with 1-D `weights` (centred) along dim 2 or 3, border `mode`: a weighted sum of shifted
    slices of the padded input, taps in order."""
    n, taps = x.shape[dim], weights.tolist()
    r = (len(taps) - 1) // 2
    padded = pad(x, dim, r, len(taps) - 1 - r, mode)
    out = padded.narrow(dim, 0, n) * taps[0]
    for k in range(1, len(taps)):
        out += padded.narrow(dim, k, n) * taps[k]
    return out


def filter2d(x: torch.Tensor, kernel: torch.Tensor, mode: str = "mirror") -> torch.Tensor:
    """cv2.filter2D (correlation, anchor at the centre) on each channel with border `mode`: small kernels as a
    weighted sum of shifted slices, large ones by FFT, image by image."""
    kh, kw = kernel.shape
    h, w = x.shape[2:]

    def padded(image: torch.Tensor) -> torch.Tensor:
        return pad(pad(image, 2, kh // 2, kh - 1 - kh // 2, mode), 3, kw // 2, kw - 1 - kw // 2, mode)
    if kh * kw > 25:
        return per_image(lambda image, i: correlate_fft(padded(image), kernel.to(x), h, w), x)
    taps, p = kernel.tolist(), padded(x)
    out = torch.zeros_like(x)
    for i in range(kh):
        for j in range(kw):
            if taps[i][j]:
                out += p[:, :, i:i + h, j:j + w] * taps[i][j]
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
    """Valid correlation of `padded` (..., h + kh - 1, w + kw - 1) with `kernel` (broadcastable, ..., kh, kw); call it
    on one image at a time (`per_image`)."""
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


@functools.lru_cache(maxsize=64)
def _zoom_taps(n: int, factor: float, centred: bool, out_len: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """imagecorruptions' clipped_zoom along one axis of n samples (scipy.ndimage.zoom, order 1, of the centre
    ceil(n / factor) samples, which maps output o to input o * (n_in - 1) / (n_out - 1)), cropped to `out_len`
    outputs (default n; -1: all) from the start or centred: output o is (1 - frac) * x[lo] + frac * x[hi]."""
    crop = int(np.ceil(n / factor))
    top = (n - crop) // 2
    zoomed = round(crop * factor)
    out_len = zoomed if out_len == -1 else (n if out_len is None else out_len)
    start = (zoomed - out_len) // 2 if centred else 0
    o = np.arange(start, start + out_len, dtype=np.float64)
    pos = o * (crop - 1) / (zoomed - 1) if zoomed > 1 else np.zeros_like(o)
    lo = np.clip(np.floor(pos).astype(int), 0, crop - 1)
    return top + lo, top + np.minimum(lo + 1, crop - 1), pos - lo


def clipped_zoom(x: torch.Tensor, factor: float, centred: bool, out_len: int | None = None) -> torch.Tensor:
    """imagecorruptions' clipped_zoom of (N, C, H, W) over H, then W (see `_zoom_taps`): two gathers and a weighted
    sum per axis."""
    for dim in (2, 3):
        lo, hi, frac = _zoom_taps(x.shape[dim], float(factor), centred, out_len)
        shape = [-1 if d == dim else 1 for d in range(x.ndim)]
        below, above = (torch.as_tensor(v, dtype=x.dtype, device=x.device).view(shape) for v in (1 - frac, frac))
        x = (x.index_select(dim, torch.as_tensor(lo, device=x.device)) * below
             + x.index_select(dim, torch.as_tensor(hi, device=x.device)) * above)
    return x


def _sin_range(lo: float, hi: float) -> tuple[float, float]:
    """(min, max) of sin over the angles lo..hi degrees."""
    values = [math.sin(math.radians(lo)), math.sin(math.radians(hi))]
    values += [s for a, s in ((90, 1.0), (270, -1.0)) if any(lo <= a + 360 * k <= hi for k in (-1, 0, 1))]
    return min(values), max(values)


def _reach(width: int, unit: float, limit: int) -> int:
    """How far (pixels) the taps 0..width-1 along a direction component `unit` can reach, one pixel of margin."""
    return min(max(0, math.ceil((width - 1) * unit - 0.5) + 1), limit)


def _directions(angle_deg: torch.Tensor, width: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """width * (sin, cos) of each sample's angle and their hypot, (N, 1) float64 each, computed sample by sample in
    Python floats (a vectorised kernel may round transcendental functions differently from its scalar tail)."""
    rows = []
    for a in angle_deg.tolist():
        py, px = width * math.sin(math.radians(a)), width * math.cos(math.radians(a))
        rows.append((py, px, math.hypot(py, px)))
    return tuple(torch.tensor(rows, dtype=torch.float64, device=device).T[..., None])


def motion_blur(x: torch.Tensor, radius: int, sigma: float, angle_deg: torch.Tensor,
                angle_range: tuple[float, float]) -> torch.Tensor:
    """imagecorruptions' numpy motion blur (one-sided Gaussian-weighted sum of edge-clamped shifted copies), one
    angle per sample (drawn from `angle_range`): the shifts become one sparse kernel per sample, as large as that
    range needs (the same for every batch), applied by FFT to the edge-padded image."""
    width = 2 * radius + 1
    k = torch.exp(-torch.arange(width, dtype=torch.float64, device=x.device) ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    n, _, h, w = x.shape
    py, px, hyp = _directions(angle_deg, width, x.device)
    steps = torch.arange(width, dtype=torch.float64, device=x.device)[None]
    # tap t reads x[r + a_t, c + b_t] (edge-clamped): the reference's shift by (dy, dx) = (-a_t, -b_t)
    a, b = torch.ceil(steps * py / hyp - 0.5).long(), torch.ceil(steps * px / hyp - 0.5).long()
    alive = ((a.abs() < h) & (b.abs() < w)).cumprod(1)  # the original stops once a shift leaves the image
    (s_lo, s_hi), (c_lo, c_hi) = _sin_range(*angle_range), _sin_range(angle_range[0] + 90, angle_range[1] + 90)
    top, bottom = _reach(width, -s_lo, h - 1), _reach(width, s_hi, h - 1)
    left, right = _reach(width, -c_lo, w - 1), _reach(width, c_hi, w - 1)
    a, b = a.clamp(-top, bottom), b.clamp(-left, right)  # only dead taps (weight 0) are moved
    kh, kw = top + bottom + 1, left + right + 1
    kernels = torch.zeros(n, kh * kw, dtype=torch.float64, device=x.device)
    cells, rows = (top + a) * kw + (left + b), torch.arange(n, device=x.device)
    for t in range(width):  # tap by tap, in order: taps that share a cell add up in the same order for every batch
        kernels[rows, cells[:, t]] += k[t] * alive[:, t]
    kernels = kernels.view(n, kh, kw).to(x.dtype)

    def blur(image: torch.Tensor, i: int) -> torch.Tensor:
        padded = pad(pad(image, 2, top, bottom, "nearest"), 3, left, right, "nearest")
        return correlate_fft(padded, kernels[i], h, w)
    return per_image(blur, x)


def rot180(x: torch.Tensor) -> torch.Tensor:
    """np.rot90(x, k=2) over H and W."""
    return x.flip(2, 3)


def next_pow2(n: int) -> int:
    """Smallest power of two >= n (1 for n = 0)."""
    return 1 if n == 0 else 1 << (n - 1).bit_length()

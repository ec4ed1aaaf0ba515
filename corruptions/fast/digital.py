"""Geometric and codec corruptions (elastic_transform, pixelate, jpeg_compression); contract in `corruptions.fast`
(pixelate and jpeg return uint8, like the reference's PIL images)."""
from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from .jpeg import jpeg_roundtrip
from .ops import draw, gaussian, per_image


def _pixel_to_grid(h: int, w: int, mode: str, device) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 (scale, offset), each (2,) for (x, y), with grid = pixels * scale + offset in grid_sample's [-1, 1]
    units: 'reflect' (align_corners=False) puts pixel i at (2i + 1) / size - 1, 'mirror' (align_corners=True) at
    2i / (size - 1) - 1 (a side of 1 pixel always samples pixel 0)."""
    size = torch.tensor([w, h], dtype=torch.float64, device=device)
    if mode == "reflect":
        return 2 / size, 1 / size - 1
    if mode == "mirror":
        scale = 2 / (size - 1).clamp(min=1)
        return scale, -torch.ones_like(scale)
    raise ValueError(mode)


def bilinear(x: torch.Tensor, grid: torch.Tensor, mode: str) -> torch.Tensor:
    """Bilinear samples of (N, C, H, W) at `grid` (N, H', W', 2) from `_pixel_to_grid`, as
    scipy.ndimage.map_coordinates(order=1) with border `mode`: 'reflect' (coordinates reflected about -0.5 and
    size - 0.5 at any distance, then clamped to the edge pixels) or 'mirror' (reflected about 0 and size - 1, as
    OpenCV's BORDER_REFLECT_101). Image by image."""
    grid = grid.to(x.dtype)
    return per_image(lambda image, i: F.grid_sample(image, grid[i:i + 1], mode="bilinear", padding_mode="reflection",
                                                    align_corners=mode == "mirror"), x)


def _pixel_grid(h: int, w: int, dtype: torch.dtype, device) -> torch.Tensor:
    """(H, W, 2) coordinates (x, y) of every pixel."""
    gy, gx = torch.meshgrid(torch.arange(h, dtype=dtype, device=device), torch.arange(w, dtype=dtype, device=device),
                            indexing="ij")
    return torch.stack([gx, gy], -1)


def _elastic_field(gens, shape, bound: float, sigma, alpha: float, device) -> torch.Tensor:
    """(N, H, W, 2) displacements (dx, dy): uniform(-bound, bound) noise, gaussian-smoothed (reflect, truncate 3),
    times alpha; dx is drawn first."""
    noise = draw(gens, lambda g: torch.rand((2, *shape), generator=g, device=device))
    field = gaussian(noise.mul_(2 * bound).sub_(bound), sigma, mode="reflect", truncate=3.0).mul_(alpha)
    return field.permute(0, 2, 3, 1)


def _affine(x: torch.Tensor, gens, jitter: float) -> torch.Tensor:
    """CIFAR-10-C's random affine (cv2.getAffineTransform of 3 jittered points, warpAffine, reflect-101)."""
    h, w = x.shape[2:]
    side = min(h, w)
    centre, half = torch.tensor([h // 2, w // 2], dtype=torch.float64), side // 3
    src = torch.stack([centre + half, torch.stack([centre[0] + half, centre[1] - half]), centre - half]).to(x.device)
    dst = src + draw(gens, lambda g: torch.rand((3, 2), generator=g, device=x.device, dtype=torch.float64)) \
        * 2 * jitter - jitter
    points = torch.cat([src, torch.ones(3, 1, dtype=torch.float64, device=x.device)], 1)
    last_row = torch.tensor([[0, 0, 1.0]], dtype=torch.float64, device=x.device)
    scale, offset = _pixel_to_grid(h, w, "mirror", x.device)
    pixels = _pixel_grid(h, w, torch.float64, x.device)  # (H, W, 2): (x, y)

    def grid(i: int) -> torch.Tensor:
        """Sample i's grid (H, W, 2). M (2x3) maps src points (as x, y) to dst; warpAffine samples at M^-1 (x, y)."""
        m = torch.linalg.solve(points, dst[i]).T
        inv = torch.linalg.inv(torch.cat([m, last_row]))[:2]  # source (x, y) of the homogeneous output pixel (x, y, 1)
        theta = inv * scale[:, None]  # the same map to grid units, composed in float64 and rounded once
        theta[:, 2] += offset
        return pixels[..., :1] * theta[:, 0] + pixels[..., 1:] * theta[:, 1] + theta[:, 2]
    return bilinear(x, torch.stack([grid(i) for i in range(len(x))]), "mirror")


def elastic_transform(x, c, gens, params):
    h, w = x.shape[2:]
    if params == "cifar-10-c":
        side = min(h, w)
        alpha, sigma, jitter = (v * side for v in c)
        x = _affine(x, gens, jitter)
        field = _elastic_field(gens, (h, w), 1.0, sigma, alpha, x.device)
    else:
        field = _elastic_field(gens, (h, w), 0.005 * h, (0.01 * h, 0.01 * w), float(c), x.device)
    scale, offset = _pixel_to_grid(h, w, "reflect", x.device)
    identity = (_pixel_grid(h, w, torch.float64, x.device) * scale + offset).to(field.dtype)  # rounded once
    grid = identity + field * scale.to(field.dtype)
    return bilinear(x, grid, "reflect").clamp_(0, 1).mul_(255)


@functools.lru_cache(maxsize=64)
def _pil_box(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) fixed-point weights of Pillow's BOX resampling (22 fraction bits, as for 8-bit images)."""
    scale = n_in / n_out
    filterscale = max(scale, 1.0)
    support = 0.5 * filterscale
    m = np.zeros((n_out, n_in))
    for o in range(n_out):
        centre = (o + 0.5) * scale
        lo, hi = max(int(centre - support + 0.5), 0), min(int(centre + support + 0.5), n_in)
        t = (np.arange(lo, hi) - centre + 0.5) / filterscale
        wts = ((t > -0.5) & (t <= 0.5)).astype(np.float64)
        m[o, lo:hi] = wts / wts.sum() if wts.sum() else wts
    return torch.from_numpy(np.where(m >= 0, np.floor(0.5 + m * (1 << 22)), np.ceil(-0.5 + m * (1 << 22))))


@functools.lru_cache(maxsize=64)
def _pil_box_taps(n_in: int, n_out: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """`_pil_box` as taps: (K, n_out) source indices and (K, n_out, 1) int32 weights, K the widest support; an
    output with fewer inputs repeats its last one with weight 0."""
    m = _pil_box(n_in, n_out)
    k = int((m != 0).sum(1).max())
    idx = torch.zeros((k, n_out), dtype=torch.long)
    wts = torch.zeros((k, n_out), dtype=torch.int32)
    for o, row in enumerate(m):
        src = row.nonzero()[:, 0]
        idx[:, o] = src[-1]
        idx[:len(src), o], wts[:len(src), o] = src, row[src].to(torch.int32)
    return idx.to(device), wts[..., None].to(device)


def _pil_box_rows(x: torch.Tensor, n_out: int) -> torch.Tensor:
    """One BOX pass of Pillow over dim -2 of int32 (..., n_in, m): weighted taps (exact int32, as Pillow's own
    accumulator), then (sum + 2^21) >> 22 clipped to 0..255."""
    idx, wts = _pil_box_taps(x.shape[-2], n_out, x.device)
    if len(idx) == 1:  # each output copies one input (weight 1 << 22, as when upsampling): a plain gather
        return x.index_select(-2, idx[0])
    acc = x.index_select(-2, idx[0]).mul_(wts[0])
    for i, w in zip(idx[1:], wts[1:]):
        acc.addcmul_(x.index_select(-2, i), w)
    return acc.add_(1 << 21).bitwise_right_shift_(22).clamp_(0, 255)


def _pil_resize_box(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """PIL Image.resize(BOX) of (N, C, H, W) holding integers 0..255, any dtype and layout, to int32: horizontal pass
    (on the transposed image, so both passes gather whole rows), round to uint8, vertical pass."""
    def int32_rows(v: torch.Tensor) -> torch.Tensor:
        return torch.empty(v.shape, dtype=torch.int32, device=v.device).copy_(v)  # contiguous: gathers read rows
    x = _pil_box_rows(int32_rows(x.mT), w).mT if w != x.shape[3] else x
    return _pil_box_rows(int32_rows(x), h) if h != x.shape[2] else x


def _pil_nearest(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """PIL Image.resize(NEAREST): source index floor((o + 0.5) * in / out)."""
    rows = ((torch.arange(h, dtype=torch.float64) + 0.5) * x.shape[2] / h).long().to(x.device)
    cols = ((torch.arange(w, dtype=torch.float64) + 0.5) * x.shape[3] / w).long().to(x.device)
    return x.mT.contiguous().index_select(-2, cols).mT.contiguous().index_select(-2, rows)


def pixelate(x, c, gens, params):
    h, w = x.shape[2:]
    small = _pil_resize_box((x * 255).round_(), int(h * c), int(w * c))
    if params == "cifar-10-c":
        return _pil_resize_box(small, h, w).to(torch.uint8)
    return _pil_nearest(small.to(torch.uint8), h, w)


def jpeg_compression(x, c, gens, params):
    rgb = torch.empty((x.shape[1], x.shape[0], *x.shape[2:]), dtype=x.dtype, device=x.device)  # channels first
    return jpeg_roundtrip(torch.mul(x.transpose(0, 1), 255, out=rgb).round_().transpose(0, 1), int(c))

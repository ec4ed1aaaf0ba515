"""Spatter (water: Canny edges, distance transform, histogram equalisation, emboss; mud: thresholded blobs) as
batched torch ops, following the OpenCV calls of the reference; contract in `corruptions.fast`."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .ops import draw, filter2d, gaussian, pad

TAN_22_5, TAN_67_5 = 0.41421356, 2.41421356
EMBOSS = torch.tensor([[-2., -1, 0], [-1, 1, 1], [0, 1, 2]])
BOX3 = torch.full((3, 3), 1 / 9)


def _shift(x: torch.Tensor, dy: int, dx: int, fill: float) -> torch.Tensor:
    """out[i, j] = x[i + dy, j + dx], `fill` outside."""
    h, w = x.shape[-2:]
    p = F.pad(x, (2, 2, 2, 2), value=fill)
    return p[..., 2 + dy:2 + dy + h, 2 + dx:2 + dx + w]


def _dilate(mask: torch.Tensor) -> torch.Tensor:
    """Boolean 3 x 3 dilation of (N, 1, H, W) (pixels outside count as False), separably."""
    p = F.pad(mask, (1, 1, 1, 1))
    rows = p[..., :-2, :] | p[..., 1:-1, :] | p[..., 2:, :]
    return rows[..., :-2] | rows[..., 1:-1] | rows[..., 2:]


def canny(img: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """cv2.Canny(img, low, high) on uint8-valued (N, 1, H, W): Sobel (replicate border), L1 magnitude,
    4-direction non-maximum suppression, hysteresis with 8-connectivity. Returns a bool edge map."""
    p = pad(pad(img, 2, 1, 1, "nearest"), 3, 1, 1, "nearest")
    dx = p[..., 2:] - p[..., :-2]  # Sobel, separably: difference one way, (1, 2, 1) smoothing the other
    gx = dx[..., :-2, :] + 2 * dx[..., 1:-1, :] + dx[..., 2:, :]
    sy = p[..., :-2] + 2 * p[..., 1:-1] + p[..., 2:]
    gy = sy[..., 2:, :] - sy[..., :-2, :]
    mag = gx.abs() + gy.abs()
    ax, ay = gx.abs(), gy.abs()
    s = torch.where((gx < 0) != (gy < 0), -1, 1)

    def nb(dy: int, dx: int) -> torch.Tensor:
        return _shift(mag, dy, dx, 0.0)
    horizontal = (mag > nb(0, -1)) & (mag >= nb(0, 1))
    vertical = (mag > nb(-1, 0)) & (mag >= nb(1, 0))
    diag = torch.where(s < 0, (mag > nb(-1, 1)) & (mag > nb(1, -1)), (mag > nb(-1, -1)) & (mag > nb(1, 1)))
    keep = torch.where(ay < ax * TAN_22_5, horizontal, torch.where(ay > ax * TAN_67_5, vertical, diag))
    weak = keep & (mag > low)
    edges = weak & (mag > high)
    while True:
        grown = weak & _dilate(edges)
        if torch.equal(grown, edges):
            return edges
        edges = grown


def distance_to(edges: torch.Tensor, cap: int) -> torch.Tensor:
    """Euclidean distance of every pixel to the nearest edge pixel, truncated at `cap` (cv2.distanceTransform
    of 255 - edges with DIST_L2, then THRESH_TRUNC; OpenCV's 5x5 mask approximates this to within ~2%)."""
    h = edges.shape[-2]
    rows = torch.arange(h, device=edges.device).view(1, 1, h, 1).expand_as(edges)
    big = h + cap + 1
    above = torch.where(edges, rows, -big).cummax(2).values  # nearest edge row at or above, per column
    below = torch.where(edges, rows, 2 * h + big).flip(2).cummin(2).values.flip(2)
    vertical = torch.minimum(rows - above, below - rows).clamp(max=cap + 1).float() ** 2
    padded = F.pad(vertical, (cap, cap), value=float((cap + 1) ** 2))
    w = edges.shape[-1]
    d2 = vertical
    for k in range(2 * cap + 1):  # exact squared distances: integers, so float32 is exact
        d2 = torch.minimum(d2, padded[..., k:k + w] + (k - cap) ** 2)
    return d2.sqrt().clamp(max=cap)


def equalize(img: torch.Tensor) -> torch.Tensor:
    """cv2.equalizeHist per image on uint8-valued (N, 1, H, W)."""
    n = img.shape[0]
    flat = img.reshape(n, -1).long()
    hist = torch.zeros(n, 256, device=img.device).scatter_add_(1, flat, torch.ones_like(flat, dtype=torch.float))
    first = (hist > 0).float().argmax(1, keepdim=True)
    cdf = hist.cumsum(1) - hist.cumsum(1).gather(1, first)
    rest = flat.shape[1] - hist.gather(1, first)
    lut = torch.round(cdf * 255 / rest.clamp(min=1)).clamp(0, 255)
    lut = torch.where(rest == 0, torch.arange(256., device=img.device).expand(n, 256), lut)
    return lut.gather(1, flat).view_as(img)


def _water(liquid: torch.Tensor) -> torch.Tensor:
    """The water mask: liquid (float64) as uint8 times its embossed edge-distance map; integer-valued, so the image
    processing runs exactly in float32."""
    liquid8 = (liquid * 255).floor().float()
    dist = distance_to(canny(liquid8, 50, 150), 20)
    dist = filter2d(dist, BOX3.to(dist.device)).floor()
    dist = equalize(dist)
    dist = filter2d(dist, EMBOSS.to(dist.device)).round().clamp(0, 255)
    dist = filter2d(dist, BOX3.to(dist.device)).round()
    return liquid8 * dist


def spatter(x, c, gens, params):
    h, w = x.shape[2:]
    noise = draw(gens, lambda g: torch.randn((1, h, w), generator=g, device=x.device)).double()  # float32 draws: 4x faster
    liquid = gaussian(noise * c[1] + c[0], float(c[2]))
    liquid = torch.where(liquid < c[3], torch.zeros_like(liquid), liquid)
    if c[5] == 0:  # water: pale turquoise along the liquid's edges
        m = _water(liquid).to(x)
        peak = m.amax(dim=(2, 3), keepdim=True)
        m = m / peak.clamp(min=1e-12) * c[4]
        colour = torch.tensor([175, 238, 238], device=x.device).to(x).view(1, 3, 1, 1) / 255
        out = (x + m * colour) * 255
        if params == "imagenet-c":  # imagecorruptions divides 0 by 0 when no edge survives: NaN, cast to 0 (black)
            out = torch.where(peak > 0, out, torch.zeros_like(out))
        return out
    m = gaussian((liquid > c[3]).to(x), float(c[4]))  # mud: brown blotches
    m = torch.where(m < 0.8, torch.zeros_like(m), m)
    colour = torch.tensor([63, 42, 20], device=x.device).to(x).view(1, 3, 1, 1) / 255
    return (x * (1 - m) + m * colour) * 255

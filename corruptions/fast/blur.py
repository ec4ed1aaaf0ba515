"""Blur corruptions (gaussian, defocus, zoom, motion, glass) as batched torch ops; contract in `corruptions.fast`."""
from __future__ import annotations

import functools

import torch

from . import ops
from .ops import clipped_zoom, draw, filter1d, filter2d, gaussian


def gaussian_blur(x, c, gens, params):
    return gaussian(x, c) * 255


@functools.lru_cache(maxsize=32)
def disk(radius: float, alias_blur: float) -> torch.Tensor:
    """imagecorruptions' defocus kernel: a normalised aliased disk smoothed by cv2.GaussianBlur (ksize 3 or 5),
    without its all-zero rim."""
    span, ksize = (8, 3) if radius <= 8 else (int(radius), 5)
    t = torch.arange(-span, span + 1, dtype=torch.float64)
    aliased = ((t[:, None] ** 2 + t[None] ** 2) <= radius ** 2).double()
    aliased = (aliased / aliased.sum()).float().double()
    g = torch.exp(-(torch.arange(ksize, dtype=torch.float64) - (ksize - 1) / 2) ** 2 / (2 * alias_blur ** 2))
    g = g / g.sum()
    k = aliased[None, None]
    k = filter1d(filter1d(k, g, 2, "mirror"), g, 3, "mirror")[0, 0]
    margin = int((k != 0).any(0).int().argmax())  # zero rim (the kernel is symmetric): cropping it changes nothing
    return k[margin:k.shape[0] - margin, margin:k.shape[1] - margin].float()


def defocus_blur(x, c, gens, params):
    return filter2d(x, disk(float(c[0]), float(c[1])).to(x.device)) * 255


def zoom_blur(x, c, gens, params):
    centred = params == "cifar-10-c"
    total = x.clone()
    for z in c:
        total += clipped_zoom(x, float(z), centred)
    return total.mul_(255 / (len(c) + 1))


def motion_blur(x, c, gens, params):
    angle = draw(gens, lambda g: torch.rand((), generator=g, device=x.device, dtype=torch.float64)) * 90 - 45
    return ops.motion_blur(x * 255, int(c[0]), float(c[1]), angle, (-45, 45))


def _duplicate(y: torch.Tensor, offsets: torch.Tensor, delta: int) -> torch.Tensor:
    """One pass of glass blur's sequential loop, exactly: for h = H-d..d+1, w = W-d..d+1 (descending),
    y[h, w] = y[h + dy, w + dx] reading already-updated pixels; offsets (N, 2 (dx, dy), H-2d, W-2d). Resolved in
    parallel by pointer jumping over nodes 0..m-1 (the scanned pixels, in scan order) and m.. (the original pixels,
    fixed points): a pixel whose source was updated earlier in the scan points at that source's node, any other at
    the source's original."""
    n, ch, h, w = y.shape
    nh, nw = h - 2 * delta, w - 2 * delta
    m, dev = nh * nw, y.device
    dx, dy = offsets.unbind(1)  # (n, nh, nw) each; scan position (r, c) is pixel (h - d - r, w - d - c)
    r = torch.arange(nh, device=dev)[:, None] - dy  # the source's scan position
    c = torch.arange(nw, device=dev) - dx
    order = torch.arange(m, device=dev).view(nh, nw)
    src_order = order - dy * nw - dx
    linked = (src_order < order) & (r >= 0) & (r < nh) & (c >= 0) & (c < nw)
    original = m + (h - delta - r) * w + (w - delta - c)
    nodes = torch.cat([torch.where(linked, src_order, original).view(n, m),
                       torch.arange(m, m + h * w, device=dev).expand(n, -1)], 1)
    head = nodes[:, :m]
    while (head < m).any():  # chains halve each step: about log2(longest chain) steps, one device sync each
        head.copy_(nodes.gather(1, head))
    values = y.reshape(n, ch, h * w).gather(2, (head - m)[:, None].expand(n, ch, m)).view(n, ch, nh, nw)
    out = y.clone()
    out[:, :, delta + 1:h - delta + 1, delta + 1:w - delta + 1] = values.flip(2, 3)  # scan order is descending
    return out


def glass_blur(x, c, gens, params):
    """Blur, truncate to uint8, duplicate pixels from offsets in [-d, d-1] (the reference's biased randint and
    view-copy "swap"), blur again."""
    sigma, delta, iterations = float(c[0]), int(c[1]), int(c[2])
    y = (gaussian(x, sigma) * 255).floor()
    h, w = x.shape[2:]
    offsets = draw(gens, lambda g: torch.randint(-delta, delta, (iterations, 2, h - 2 * delta, w - 2 * delta),
                                                 generator=g, device=x.device))
    for i in range(iterations):
        y = _duplicate(y, offsets[:, i], delta)
    return gaussian(y / 255, sigma) * 255


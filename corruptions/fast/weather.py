"""Weather corruptions (snow, frost, fog); contract in `corruptions.fast`."""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import cv2
import numpy as np
import torch

from . import ops
from .ops import clipped_zoom, draw

FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")  # randint(5): frost6 unused


def _plasma(gens: list[torch.Generator], mapsize: int, decay: float, device: torch.device) -> torch.Tensor:
    """Diamond-square plasma fractals (N, mapsize, mapsize) in [0, 1], as imagecorruptions' plasma_fractal."""
    n = len(gens)
    m = torch.zeros(n, mapsize, mapsize, dtype=torch.float64, device=device)
    total = sum(3 * (mapsize // s) ** 2 for s in (mapsize >> k for k in range(mapsize.bit_length())) if s >= 2)
    u = draw(gens, lambda g: torch.rand(total, generator=g, device=device, dtype=torch.float64))
    used, step, wibble = 0, mapsize, 100.0

    def wibbled(a: torch.Tensor) -> torch.Tensor:
        nonlocal used
        k = a[0].numel()
        noise = (u[:, used:used + k].view_as(a) * 2 - 1) * wibble
        used += k
        return a / 4 + wibble * noise

    while step >= 2:
        half = step // 2
        corner = m[:, 0::step, 0::step]
        acc = corner + corner.roll(-1, 1)
        acc = acc + acc.roll(-1, 2)
        m[:, half::step, half::step] = wibbled(acc)
        dr, ul = m[:, half::step, half::step], m[:, 0::step, 0::step]
        m[:, 0::step, half::step] = wibbled(dr + dr.roll(1, 1) + ul + ul.roll(-1, 2))
        m[:, half::step, 0::step] = wibbled(dr + dr.roll(1, 2) + ul + ul.roll(-1, 1))
        step //= 2
        wibble /= decay
    m = m - m.amin(dim=(1, 2), keepdim=True)
    return m / m.amax(dim=(1, 2), keepdim=True)


def fog(x, c, gens, params):
    h, w = x.shape[2:]
    peak = x.amax(dim=(1, 2, 3), keepdim=True)
    layer = _plasma(gens, ops.next_pow2(max(h, w)), float(c[1]), x.device)[:, None, :h, :w].to(x)
    return ((x + c[0] * layer) * peak / (peak + c[0])) * 255


@functools.lru_cache(maxsize=8)
def _textures(params: str, h: int, w: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The 5 frost textures as the reference scales them for h x w images, zero-padded into one float tensor
    (5, 3, TH, TW) (RGB, 0..255) on `device` (kept there), and their sizes (5, 2)."""
    folder = Path(importlib.util.find_spec("imagecorruptions").origin).parent / "frost"
    textures = []
    for name in FROST_FILES:
        t = cv2.imread(str(folder / name))
        if params == "cifar-10-c":  # shrunk 0.2x, scaled up (x1.1 margin) only when smaller than the image
            t = cv2.resize(t, (0, 0), fx=0.2, fy=0.2)
            scale = max(h / t.shape[0], w / t.shape[1])
            if scale >= 1:
                t = cv2.resize(t, (int(np.ceil(t.shape[1] * scale * 1.1)), int(np.ceil(t.shape[0] * scale * 1.1))),
                               interpolation=cv2.INTER_CUBIC)
        else:  # imagecorruptions: scale by max(1, image / texture) per side, times 1.1
            scale = max(1.0, h / t.shape[0], w / t.shape[1]) * 1.1
            t = cv2.resize(t, (int(np.ceil(t.shape[1] * scale)), int(np.ceil(t.shape[0] * scale))),
                           interpolation=cv2.INTER_CUBIC)
        textures.append(t[..., ::-1])
    sizes = torch.tensor([t.shape[:2] for t in textures])
    out = torch.zeros(len(textures), 3, int(sizes[:, 0].max()), int(sizes[:, 1].max()))
    for i, t in enumerate(textures):
        out[i, :, :t.shape[0], :t.shape[1]] = torch.from_numpy(np.ascontiguousarray(t)).permute(2, 0, 1).float()
    return out.to(device), sizes.to(device)


def frost(x, c, gens, params):
    h, w = x.shape[2:]
    textures, sizes = _textures(params, h, w, x.device)
    u = draw(gens, lambda g: torch.rand(3, generator=g, device=x.device, dtype=torch.float64))
    index = (u[:, 0] * len(FROST_FILES)).long()
    top = (u[:, 1] * (sizes[index, 0] - h)).long()
    left = (u[:, 2] * (sizes[index, 1] - w)).long()
    rows = top[:, None] + torch.arange(h, device=x.device)
    cols = left[:, None] + torch.arange(w, device=x.device)
    crop = textures[index[:, None, None], :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    return c[0] * x * 255 + c[1] * crop.to(x)


def snow(x, c, gens, params):
    h, w = x.shape[2:]
    cifar = params == "cifar-10-c"
    noise = draw(gens, lambda g: torch.randn((1, h, w), generator=g, device=x.device))
    angle = draw(gens, lambda g: torch.rand((), generator=g, device=x.device, dtype=torch.float64)) * 90 - 135
    out_len = None if cifar else -1  # the reference blurs the whole zoomed layer, then keeps its top-left corner
    layer = clipped_zoom(noise * c[1] + c[0], float(c[2]), cifar, out_len)
    layer = torch.where(layer < c[3], torch.zeros_like(layer), layer).clamp(0, 1)
    if cifar:  # CIFAR-10-C blurs the layer as uint8
        blurred = ops.motion_blur((layer * 255).floor(), int(c[4]), float(c[5]), angle, (-135, -45)).clamp(0, 255)
    else:
        blurred = (ops.motion_blur(layer, int(c[4]), float(c[5]), angle, (-135, -45)) * 255)[:, :, :h, :w]
    layer = torch.round(blurred) / 255
    grey = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]
    x = c[6] * x + (1 - c[6]) * torch.maximum(x, grey * 1.5 + 0.5)
    return (x + layer + ops.rot180(layer)) * 255

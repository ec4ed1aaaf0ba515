"""Colour corruptions (contrast, brightness, saturate); contract in `corruptions.fast`.

brightness and saturate change one HSV channel (skimage's rgb2hsv / hsv2rgb round trip in the reference); they are
computed in RGB directly: with V = max(R, G, B), S = (V - min) / V and hue fixed, every channel is
V - V * S * phi(hue), so a new V' scales the pixel by V' / V and a new S' moves each channel to V - (S' / S)(V - x).
"""
from __future__ import annotations

import torch

_TINY = 1e-12  # guards divisions whose result is discarded (black or grey pixels)


def contrast(x, c, gens, params):
    """The mean is summed over the uint8 values (integers: exact in any order), then scaled to [0, 1]."""
    total = (x * 255).round_().sum(dim=(2, 3), keepdim=True, dtype=torch.float64)
    mean = (total / (255 * x.shape[2] * x.shape[3])).to(x.dtype)
    return ((x - mean) * c + mean) * 255


def brightness(x, c, gens, params):
    v = x.amax(1, keepdim=True)
    bright = (v + c).clamp(0, 1)
    return torch.where(v > 0, x * (bright / v.clamp(min=_TINY)), bright) * 255


def saturate(x, c, gens, params):
    v = x.amax(1, keepdim=True)
    delta = v - x.amin(1, keepdim=True)
    sat = (delta / v.clamp(min=_TINY) * c[0] + c[1]).clamp(0, 1)
    coloured = v - sat * v / delta.clamp(min=_TINY) * (v - x)
    grey = torch.cat([v, v * (1 - sat), v * (1 - sat)], 1)  # hue 0 for greys: added saturation turns them red
    return torch.where(delta > 0, coloured, grey) * 255

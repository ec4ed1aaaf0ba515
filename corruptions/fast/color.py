"""Colour corruptions (contrast, brightness, saturate); same contract as `noise`."""
from __future__ import annotations

from .ops import hsv_to_rgb, rgb_to_hsv


def contrast(x, c, gens, params):
    mean = x.mean(dim=(2, 3), keepdim=True)
    return ((x - mean) * c + mean).clamp(0, 1) * 255


def brightness(x, c, gens, params):
    hsv = rgb_to_hsv(x)
    hsv[:, 2] = (hsv[:, 2] + c).clamp(0, 1)
    return hsv_to_rgb(hsv).clamp(0, 1) * 255


def saturate(x, c, gens, params):
    hsv = rgb_to_hsv(x)
    hsv[:, 1] = (hsv[:, 1] * c[0] + c[1]).clamp(0, 1)
    return hsv_to_rgb(hsv).clamp(0, 1) * 255

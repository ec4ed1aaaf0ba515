"""A JPEG encode/decode round trip in torch, following libjpeg(-turbo) as Pillow drives it: fixed-point YCbCr,
4:2:0 chroma (box downsampling with alternating bias, "fancy" triangular upsampling), baseline quality-scaled
standard tables, round-half-up quantisation. The DCT is exact (float) where libjpeg's islow is integer, so a
few coefficients next to a rounding boundary can differ."""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

LUMA = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
        14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
        49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]
CHROMA = [17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
          47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32


def fix(v: float) -> int:
    """libjpeg's FIX(): v in 16-bit fixed point."""
    return int(v * 65536 + 0.5)


@functools.lru_cache(maxsize=16)
def tables(quality: int) -> tuple[torch.Tensor, torch.Tensor]:
    """jpeg_set_quality(quality, force_baseline=TRUE) luminance and chrominance tables, (8, 8) each."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    def scaled(base: list[int]) -> torch.Tensor:
        return torch.tensor([min(max((b * scale + 50) // 100, 1), 255) for b in base], dtype=torch.float64).view(8, 8)
    return scaled(LUMA), scaled(CHROMA)


@functools.lru_cache(maxsize=1)
def dct_matrix() -> torch.Tensor:
    """The orthonormal 8-point DCT-II matrix (JPEG's transform)."""
    k = torch.arange(8, dtype=torch.float64)
    m = torch.cos((2 * k[None] + 1) * k[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    m[0] /= math.sqrt(2)
    return m


def _blocks(p: torch.Tensor) -> torch.Tensor:
    n, h, w = p.shape
    return p.view(n, h // 8, 8, w // 8, 8).transpose(2, 3)


def _unblocks(b: torch.Tensor) -> torch.Tensor:
    n, bh, bw = b.shape[:3]
    return b.transpose(2, 3).reshape(n, bh * 8, bw * 8)


def _code(plane: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Level shift, DCT, quantise (round half away from zero), dequantise, inverse DCT, round and clamp."""
    d = dct_matrix().to(plane.device)
    coef = d @ _blocks(plane - 128) @ d.T
    q = q.to(plane.device)
    coef = torch.sign(coef) * torch.floor(coef.abs() / q + 0.5) * q
    return (_unblocks(d.T @ coef @ d) + 128).add(0.5).floor().clamp(0, 255)


def _downsample(c: torch.Tensor) -> torch.Tensor:
    """h2v2_downsample: (sum of 2x2 + bias) >> 2, bias 1, 2, 1, 2, ... along each output row."""
    s = c[:, 0::2, 0::2] + c[:, 0::2, 1::2] + c[:, 1::2, 0::2] + c[:, 1::2, 1::2]
    bias = 1 + (torch.arange(s.shape[2], device=c.device) % 2)
    return torch.floor((s + bias) / 4)


def _upsample(c: torch.Tensor) -> torch.Tensor:
    """h2v2_fancy_upsample: triangular 3:1 weights both ways, edges replicated, biases 8 / 7 on even / odd columns."""
    up, down = torch.cat([c[:, :1], c[:, :-1]], 1), torch.cat([c[:, 1:], c[:, -1:]], 1)
    rows = torch.stack([3 * c + up, 3 * c + down], 2).flatten(1, 2)  # column sums per output row
    left, right = torch.cat([rows[:, :, :1], rows[:, :, :-1]], 2), torch.cat([rows[:, :, 1:], rows[:, :, -1:]], 2)
    return torch.stack([torch.floor((3 * rows + left + 8) / 16), torch.floor((3 * rows + right + 7) / 16)], 3).flatten(2)


def jpeg_roundtrip(images: torch.Tensor, quality: int) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> uint8 (N, 3, H, W) as PIL's save(JPEG, quality) then open would give."""
    h, w = images.shape[2:]
    x = images.double()
    ph, pw = -h % 16, -w % 16  # libjpeg pads to whole MCUs by replicating the last row / column
    x = F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
    r, g, b = x.unbind(1)
    half = 1 << 15
    y = torch.floor((fix(.299) * r + fix(.587) * g + fix(.114) * b + half) / 65536)
    cb = torch.floor((-fix(.16874) * r - fix(.33126) * g + fix(.5) * b + (128 << 16) + half - 1) / 65536)
    cr = torch.floor((fix(.5) * r - fix(.41869) * g - fix(.08131) * b + (128 << 16) + half - 1) / 65536)
    ql, qc = tables(quality)
    y = _code(y, ql)
    cb, cr = (_upsample(_code(_downsample(v), qc)) - 128 for v in (cb, cr))
    red = y + torch.floor((fix(1.402) * cr + half) / 65536)
    green = y + torch.floor((-fix(.34414) * cb - fix(.71414) * cr + half) / 65536)
    blue = y + torch.floor((fix(1.772) * cb + half) / 65536)
    return torch.stack([red, green, blue], 1)[:, :, :h, :w].clamp(0, 255).to(torch.uint8)

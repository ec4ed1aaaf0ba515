"""A JPEG encode/decode round trip in torch, following libjpeg(-turbo) as Pillow drives it: fixed-point YCbCr,
4:2:0 chroma (box downsampling with alternating bias, "fancy" triangular upsampling), baseline quality-scaled
standard tables, round-half-up quantisation. The DCT is float where libjpeg's islow is integer, so a few AC
coefficients next to a rounding boundary can differ; the four it computes exactly, (0|4, 0|4) with DC, are exact
here too, so blocks holding only those (flat ones, say) match it, ties included.

Everything runs in float32, exact where it matters: every fixed-point step (colour conversion, chroma down- and
upsampling) only forms integers below 2^24 scaled by powers of two, and the DCT's DC basis is exactly 1/8."""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from .ops import per_image

LUMA = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
        14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
        49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]
CHROMA = [17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
          47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32
SCALE = 1 / 65536  # libjpeg's 16-bit fixed point
RGB_TO_YCC = [[.299, .587, .114], [-.16874, -.33126, .5], [.5, -.41869, -.08131]]
CBCR_TO_RGB = [[0, 1.402], [-.34414, -.71414], [1.772, 0]]


def fix(v: float) -> int:
    """libjpeg's FIX(): v in 16-bit fixed point (rounded half away from zero, as the C macro on constants)."""
    return int(math.copysign(int(abs(v) * 65536 + 0.5), v))


def tables(quality: int) -> tuple[torch.Tensor, torch.Tensor]:
    """jpeg_set_quality(quality, force_baseline=TRUE) luminance and chrominance tables, (64,) each, row-major."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    def scaled(base: list[int]) -> torch.Tensor:
        return torch.tensor([min(max((b * scale + 50) // 100, 1), 255) for b in base], dtype=torch.float64)
    return scaled(LUMA), scaled(CHROMA)


@functools.lru_cache(maxsize=1)
def dct_basis() -> tuple[torch.Tensor, torch.Tensor]:
    """The 2-D DCT-II as a (64, 64) basis, rows (i, j), columns (u, v), times a (64,) normalisation per column.

    The 1-D basis functions u = 0 and u = 4 are exactly 1 and +-1 (cos((2i+1) pi/4) / cos(pi/4)) with norm sqrt(1/8), so
    the (0|4, 0|4) coefficients are exact integer sums over 8 (as in libjpeg's islow, which computes them with
    additions only); the others are cos((2i+1)u pi/16) with norm 1/2."""
    k = torch.arange(8, dtype=torch.float64)
    cos = torch.cos((2 * k[:, None] + 1) * k[None] * math.pi / 16)  # (i, u)
    cos[:, 0], cos[:, 4] = 1.0, cos[:, 4].sign()
    exact = torch.zeros(8, dtype=torch.bool)
    exact[[0, 4]] = True
    norm = torch.where(exact, math.sqrt(1 / 8), 0.5)
    scale = torch.outer(norm, norm)
    scale[exact[:, None] & exact[None]] = 1 / 8
    return torch.kron(cos, cos), scale.flatten()


@functools.lru_cache(maxsize=32)
def _transforms(quality: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Per component (luma, chroma): the forward DCT (64, 64), its quantisation divisors (64,) and the dequantising
    inverse DCT (64, 64), float32 on `device`."""
    basis, scale = dct_basis()
    out = []
    for q in tables(quality):
        out += [basis * scale, q, (basis * (scale * q)).T]
    return tuple(t.to(device, torch.float32) for t in out)


@functools.lru_cache(maxsize=4)
def _colour_matrices(device: torch.device) -> tuple[torch.Tensor, ...]:
    """RGB -> level-shifted YCbCr and CbCr -> RGB offsets, fixed point over 2^16 (exact in float32), with biases."""
    to_ycc = torch.tensor([[fix(v) for v in row] for row in RGB_TO_YCC], dtype=torch.float64) * SCALE
    # Y: + ONE_HALF - 128 (the DCT's level shift); Cb, Cr: + (128 << 16) + ONE_HALF - 1 - 128, the shift cancels
    ycc_bias = torch.tensor([[32768 - (128 << 16)], [32767], [32767]], dtype=torch.float64) * SCALE
    to_rgb = torch.tensor([[fix(v) for v in row] for row in CBCR_TO_RGB], dtype=torch.float64) * SCALE
    return tuple(t.to(device, torch.float32) for t in (to_ycc, ycc_bias, to_rgb))


def _mix(m: torch.Tensor, planes: torch.Tensor) -> torch.Tensor:
    """m (K, J) applied to planes (J, P) -> (K, P), as products and sums in order (exact here: fixed-point steps)."""
    out = m[:, :1] * planes[0]
    for j in range(1, len(planes)):
        out += m[:, j:j + 1] * planes[j]
    return out


def _to_blocks(planes: torch.Tensor, out: torch.Tensor) -> None:
    """Copy (..., H, W) planes into `out`, (blocks, 64) in raster order of 8x8 blocks."""
    *lead, h, w = planes.shape
    out.view(*lead, h // 8, w // 8, 8, 8).copy_(planes.unflatten(-1, (w // 8, 8)).unflatten(-3, (h // 8, 8))
                                                .transpose(-3, -2))


def _from_blocks(blocks: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """The inverse of `_to_blocks`: (blocks, 64) -> (..., H, W)."""
    *lead, h, w = shape
    return blocks.view(*lead, h // 8, w // 8, 8, 8).transpose(-3, -2).reshape(shape)


def _code(blocks: torch.Tensor, forward: torch.Tensor, q: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
    """One image's level-shifted (1, blocks, 64): DCT, quantise (round half away from zero), dequantise, inverse DCT,
    level shift back, round half up and clamp to 0..255."""
    coef = (blocks[0] @ forward).div_(q)
    coef = coef.abs().add_(0.5).floor_().copysign_(coef)
    out = torch.addmm(torch.full((1,), 128.5, dtype=blocks.dtype, device=blocks.device), coef, inverse)
    return out.floor_().clamp_(0, 255)[None]


def _downsample(c: torch.Tensor) -> torch.Tensor:
    """h2v2_downsample: (sum of 2x2 + bias) >> 2, bias 1, 2, 1, 2, ... along each output row."""
    cols = c[..., 0::2] + c[..., 1::2]
    s = cols[..., 0::2, :] + cols[..., 1::2, :]
    return s.add_(_alternating(1.0, 2.0, s.shape[-1], c.device)).mul_(0.25).floor_()


def _upsample(c: torch.Tensor) -> torch.Tensor:
    """h2v2_fancy_upsample of (..., h, w), minus 128: triangular 3:1 weights both ways, edges replicated, biases
    8 / 7 on even / odd output columns, >> 4."""
    *lead, h, w = c.shape
    rows = torch.empty((*lead, h, 2, w), dtype=c.dtype, device=c.device)  # column sums, output rows 2i and 2i + 1
    torch.add(c[..., :-1, :], c[..., 1:, :], alpha=3, out=rows[..., 1:, 0, :])
    torch.add(c[..., 1:, :], c[..., :-1, :], alpha=3, out=rows[..., :-1, 1, :])
    torch.mul(c[..., :1, :], 4, out=rows[..., :1, 0, :])
    torch.mul(c[..., -1:, :], 4, out=rows[..., -1:, 1, :])
    rows = rows.view(*lead, 2 * h, w)
    out = torch.empty((*lead, 2 * h, w, 2), dtype=c.dtype, device=c.device)
    torch.add(rows[..., :-1], rows[..., 1:], alpha=3, out=out[..., 1:, 0])
    torch.add(rows[..., 1:], rows[..., :-1], alpha=3, out=out[..., :-1, 1])
    torch.mul(rows[..., :1], 4, out=out[..., :1, 0])
    torch.mul(rows[..., -1:], 4, out=out[..., -1:, 1])
    bias = _alternating(8.0 - 2048, 7.0 - 2048, 2 * w, c.device)  # 8, 7, ... minus 128 << 4, the level shift
    return out.view(*lead, 2 * h, 2 * w).add_(bias).mul_(1 / 16).floor_()


@functools.lru_cache(maxsize=32)
def _alternating(even: float, odd: float, n: int, device: torch.device) -> torch.Tensor:
    """(n,) float32 even, odd, even, odd, ..."""
    return torch.tensor([even, odd], device=device).repeat((n + 1) // 2)[:n]


def jpeg_roundtrip(images: torch.Tensor, quality: int) -> torch.Tensor:
    """uint8 (or integer-valued float) (N, 3, H, W) -> uint8 (N, 3, H, W) as PIL's save(JPEG, quality) then open
    would give."""
    n, _, h, w = images.shape
    x = images.float()
    ph, pw = -h % 16, -w % 16  # libjpeg pads to whole MCUs by replicating the last row / column
    x = F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
    hp, wp = x.shape[2:]
    to_ycc, ycc_bias, to_rgb = _colour_matrices(x.device)
    # channels first, so each colour step mixes whole planes; a view when x.transpose(0, 1) is contiguous (as
    # jpeg_compression passes it)
    planes = x.transpose(0, 1).contiguous().view(3, n * hp * wp)
    ycc = _mix(to_ycc, planes).add_(ycc_bias).floor_().view(3, n, hp, wp)
    chroma = _downsample(ycc[1:]).transpose(0, 1)  # (N, 2, H / 2, W / 2)
    luma_blocks = torch.empty((n, hp * wp // 64, 64), dtype=x.dtype, device=x.device)
    chroma_blocks = torch.empty((n, chroma[0].numel() // 64, 64), dtype=x.dtype, device=x.device)
    _to_blocks(ycc[0], luma_blocks)
    _to_blocks(chroma, chroma_blocks)
    fl, ql, il, fc, qc, ic = _transforms(quality, x.device)
    # the DCTs are matrix products: one image at a time, so their summation order cannot depend on the batch
    luma_blocks = per_image(lambda b, i: _code(b, fl, ql, il), luma_blocks)
    chroma_blocks = per_image(lambda b, i: _code(b, fc, qc, ic), chroma_blocks)
    cbcr = _upsample(_from_blocks(chroma_blocks, chroma.shape).transpose(0, 1))
    rgb = _mix(to_rgb, cbcr.reshape(2, n * hp * wp)).add_(0.5).floor_().view(3, n, hp, wp)
    rgb += _from_blocks(luma_blocks, (1, n, hp, wp))
    return rgb[:, :, :h, :w].clamp_(0, 255).transpose(0, 1).to(torch.uint8, memory_format=torch.contiguous_format)

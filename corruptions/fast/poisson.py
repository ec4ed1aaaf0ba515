"""Exact Poisson sampling by table inversion when the rate takes few values (shot noise: 256 pixel levels).

For each level l and outcome boundaries kmax_0 <= ... <= kmax_{J-1}, outcome V = j means kmax_{j-1} < K <= kmax_j for
K ~ Poisson(rate_l) (V = J: K > kmax_{J-1}). The CDF P(K <= kmax_j) is computed in double precision (absolute error
~1e-15) and scaled to integer thresholds T = ceil(cdf * 2^53), so that for a uniform 53-bit integer u,
V = #{j : T_j <= u} is exact inversion. A guide table over the top GUIDE_BITS bits of u decides V with one lookup for
most draws (~98-99% for shot noise); the rest (bins that hold a threshold) draw their low bits and search the sorted
integer keys level * 2^53 + T_j of all levels at once. Each sample draws from its own generator: the guide bins of all
its values, then the low bits of its searched values, in order. Tables are built on the CPU and copied once per device.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

BITS = 53
GUIDE_BITS = 11
LOW_BITS = BITS - GUIDE_BITS


@dataclass(frozen=True)
class InverseTable:
    """keys (L * J,) int64: level * 2^53 + T_j, sorted, so that a search of level * 2^53 + u counts the level's
    T_j <= u after the lower levels' J each; guide (L, 2^GUIDE_BITS) int16: V of the bin, or -1 where the bin holds a
    threshold (the draw needs the search)."""
    keys: torch.Tensor
    guide: torch.Tensor

    def to(self, device: torch.device) -> InverseTable:
        return InverseTable(self.keys.to(device), self.guide.to(device))


def poisson_cdf(rates: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """P(K <= k) for K ~ Poisson(rates) (L,) float64 at integers k (J,) >= 0: (L, J), absolute error ~1e-15.

    The pmf up to a constant is the running product of the ratios rate / i (each exact to a few ulps relative to its
    neighbours), normalised over each rate's support up to rate + 10 sqrt(rate) + 20 (the tail beyond holds less than
    1e-20); each CDF value is summed from the nearer tail."""
    top = float(rates.max())
    if top > 700:
        raise ValueError(f"Poisson rate {top} > 700 (the unnormalised pmf would overflow)")
    size = math.ceil(top + 10 * math.sqrt(top) + 20)
    k = k.clamp(max=size - 1)  # P(K <= size - 1) = 1 to double precision
    last = int(k.max())
    i = torch.arange(1, size + 1, dtype=torch.float64)
    ends = rates[:, None] + 10 * rates[:, None].sqrt() + 20  # zeros beyond each rate's support (no subnormals)
    weights = torch.cat([torch.ones_like(rates)[:, None], torch.where(i <= ends, rates[:, None] / i, 0).cumprod(1)], 1)
    total = weights.sum(1, keepdim=True)
    head = weights[:, :last + 2]  # i = 0 .. last + 1
    below = head[:, :-1].cumsum(1)  # sum over i <= k, k = 0 .. last
    above = head[:, 1:].flip(1).cumsum(1).flip(1) + weights[:, last + 2:].sum(1, keepdim=True)  # sum over i > k
    below, above = below[:, k], above[:, k]
    return torch.where(below < 0.5 * total, below / total, 1 - above / total).clamp(0, 1)


def inverse_table(rates: torch.Tensor, kmax: torch.Tensor) -> InverseTable:
    """Table for levels with Poisson `rates` (L,) float64 and outcome boundaries `kmax` (J,) nondecreasing, J < 2^15."""
    thresholds = (poisson_cdf(rates, kmax) * 2 ** BITS).ceil().long()
    (levels, width), bins = thresholds.shape, 2 ** GUIDE_BITS
    start, end = (thresholds + 2 ** LOW_BITS - 1) >> LOW_BITS, thresholds >> LOW_BITS  # T in bin [end, start)
    # V at each bin's smallest u: bin m has V = j for start_{j-1} <= m < start_j (start_{-1} = 0, start_J = bins)
    edges = torch.cat([torch.zeros(levels, 1, dtype=torch.int64), start, torch.full((levels, 1), bins)], 1)
    outcomes = torch.arange(width + 1, dtype=torch.int16).repeat(levels)
    guide = outcomes.repeat_interleave(edges.diff(dim=1).view(-1), output_size=levels * bins).view(levels, bins)
    inside = start > end  # T strictly inside bin `end`: V changes within it, so its draws need the search
    guide[torch.arange(levels)[:, None].expand(-1, width)[inside], end[inside]] = -1
    keys = (torch.arange(levels)[:, None] << BITS) + thresholds
    return InverseTable(keys.view(-1), guide)


def sample(table: InverseTable, values: torch.Tensor, gens: list[torch.Generator], scale: float = 1.0) -> torch.Tensor:
    """Outcomes V (int16, contiguous) at levels round(values * scale), `values` (N, ...) on the table's device; row i
    draws from gens[i]: its guide bins (two per 32-bit draw), then the low bits of its searched values, in order."""
    n, device = len(values), values.device
    index = torch.empty(values.shape, dtype=torch.int32, device=device)
    index.copy_(values * (scale * 2 ** GUIDE_BITS) + 0.5)  # level * 2^GUIDE_BITS: rounding errors << 0.5
    index = index.view(n, -1)
    index.add_(_bins(index.shape, gens, device))  # level * 2^GUIDE_BITS + bin
    out = table.guide.view(-1).index_select(0, index.view(-1))
    todo = (out < 0).nonzero().squeeze(1)
    if len(todo):
        per_row = torch.bincount(todo // index.shape[1], minlength=n).tolist()
        low = torch.cat([torch.empty(k, dtype=torch.int64, device=device).random_(0, 2 ** LOW_BITS, generator=g)
                         for k, g in zip(per_row, gens) if k])
        picked = index.view(-1)[todo].long()
        keys = (picked << LOW_BITS) | low  # level * 2^53 + u, u the 53-bit uniform
        width = table.keys.numel() // table.guide.shape[0]
        out[todo] = (torch.searchsorted(table.keys, keys, right=True) - (picked >> GUIDE_BITS) * width).to(out.dtype)
    return out.view(values.shape)


def _bins(shape: tuple[int, int], gens: list[torch.Generator], device: torch.device) -> torch.Tensor:
    """(N, M) uniform integers below 2^GUIDE_BITS, row i from gens[i]: the low and high halves of M / 2 draws."""
    n, m = shape
    half = (m + 1) // 2
    draws = torch.empty(n, half, dtype=torch.int32, device=device)
    for row, g in zip(draws, gens):
        row.random_(0, 2 ** (2 * GUIDE_BITS), generator=g)
    return torch.cat([draws & (2 ** GUIDE_BITS - 1), draws >> GUIDE_BITS], 1)[:, :m]


@functools.lru_cache(maxsize=64)
def shot_table(c: float, device: str) -> InverseTable:
    """Table for shot noise at severity `c`: level p has rate float32(p / 255) * c (as x * c in the caller) and outcome
    v is the uint8 value that counts k give, truncate(clip(float32(k) / c, 0, 1) * 255); all k >= c give 255."""
    if device != "cpu":
        return shot_table(c, "cpu").to(torch.device(device))
    rates = (torch.arange(256, dtype=torch.float32) / 255 * c).double()
    k = torch.arange(math.ceil(c) + 1, dtype=torch.float32)
    values = ((k / c).clamp(0, 1) * 255).floor().to(torch.int64)  # nondecreasing in k, 0 at k = 0, 255 at k >= c
    kmax = torch.searchsorted(values, torch.arange(255), right=True) - 1  # largest k with value <= v, v = 0..254
    return inverse_table(rates, kmax)

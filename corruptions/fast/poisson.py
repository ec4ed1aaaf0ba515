"""Exact Poisson sampling by table inversion when the rate takes few values (shot noise: 256 pixel levels).

For each level l and outcome boundaries kmax_0 <= ... <= kmax_{J-1}, outcome V = j means kmax_{j-1} < K <= kmax_j for
K ~ Poisson(rate_l) (V = J: K > kmax_{J-1}). The CDF P(K <= kmax_j) is computed in double precision (absolute error
~1e-15) and scaled to integer thresholds T = ceil(cdf * 2^53), so that for a uniform 53-bit integer u,
V = #{j : T_j <= u} is exact inversion. A guide table over the top GUIDE_BITS bits of u decides V with one lookup for
most draws; the rest (bins that hold a threshold) run a vectorised binary search. Each sample draws from its own
generator: the guide bits for all its values, then the low bits for its searched values, in order.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import math

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

    The pmf up to a constant is the running product of the ratios rate / i (exact to a few ulps relative to its
    neighbours), normalised over a support (rate + 10 sqrt(rate) + 20) whose tail beyond holds less than 1e-20; each CDF value is summed from
    the nearer tail."""
    top = float(rates.max())
    if top > 700:
        raise ValueError(f"Poisson rate {top} > 700 (the unnormalised pmf would overflow)")
    size = math.ceil(top + 10 * math.sqrt(top) + 20)
    i = torch.arange(1, size + 1, dtype=torch.float64)
    ends = rates[:, None] + 10 * rates[:, None].sqrt() + 20  # each row's support: zeros beyond (no subnormals)
    ratios = torch.where(i <= ends, rates[:, None] / i, 0)
    weights = torch.cat([torch.ones_like(rates)[:, None], ratios.cumprod(1)], 1)
    pmf = weights / weights.sum(1, keepdim=True)
    below = pmf.cumsum(1)
    above = pmf.flip(1).cumsum(1).flip(1)  # P(K >= i)
    cdf = torch.where(below < 0.5, below, 1 - torch.cat([above[:, 1:], torch.zeros_like(above[:, :1])], 1))
    return cdf[:, k.clamp(max=size)].clamp(0, 1)


def inverse_table(rates: torch.Tensor, kmax: torch.Tensor) -> InverseTable:
    """Table for levels with Poisson `rates` (L,) float64 and outcome boundaries `kmax` (J,) nondecreasing, J < 2^15."""
    thresholds = (poisson_cdf(rates, kmax) * 2 ** BITS).ceil().long()
    bins = 2 ** GUIDE_BITS

    def at_most(edges: torch.Tensor) -> torch.Tensor:  # (L, bins): #{j : edge_j <= m}, m = 0 .. bins - 1
        ones = torch.ones(edges.shape, dtype=torch.int16)
        hist = torch.zeros(len(rates), bins + 1, dtype=torch.int16).scatter_add_(1, edges, ones)
        return hist.cumsum(1, dtype=torch.int16)[:, :bins]

    first = at_most((thresholds + 2 ** LOW_BITS - 1) >> LOW_BITS)  # V at u = m * 2^LOW_BITS, the bin's smallest u
    last = at_most(thresholds >> LOW_BITS)  # V at u = (m + 1) * 2^LOW_BITS - 1, its largest
    keys = (torch.arange(len(rates))[:, None] << BITS) + thresholds
    return InverseTable(keys.view(-1), torch.where(first == last, first, -1))


def sample(table: InverseTable, levels: torch.Tensor, gens: list[torch.Generator]) -> torch.Tensor:
    """Outcomes V (int16, contiguous) for integer-valued `levels` (N, ...) on the table's device (floats are rounded to
    the nearest level); row i draws from gens[i]: its bins in row-major order, then the low bits of its searched ones."""
    n, device = len(levels), levels.device
    index = torch.empty(levels.shape, dtype=torch.int32, device=device).copy_(levels * 2 ** GUIDE_BITS + 0.5)
    bins = torch.empty_like(index)
    for row, g in zip(bins, gens):
        row.random_(0, 2 ** GUIDE_BITS, generator=g)
    index = index.view(-1).add_(bins.view(-1))  # level * 2^GUIDE_BITS + bin
    out = table.guide.view(-1).index_select(0, index)
    todo = (out < 0).nonzero().squeeze(1)
    if len(todo):
        per_row = torch.bincount(todo // (len(out) // n), minlength=n).tolist()
        low = torch.cat([torch.empty(k, dtype=torch.int64, device=device).random_(0, 2 ** LOW_BITS, generator=g)
                         for k, g in zip(per_row, gens) if k])
        picked = index[todo].long()
        keys = (picked << LOW_BITS) | low  # level * 2^53 + u, u the 53-bit uniform
        width = table.keys.numel() // table.guide.shape[0]
        out[todo] = (torch.searchsorted(table.keys, keys, right=True) - (picked >> GUIDE_BITS) * width).to(out.dtype)
    return out.view(levels.shape)


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

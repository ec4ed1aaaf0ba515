"""Square Attack (Andriushchenko et al. 2020, "Square Attack: a query-efficient black-box adversarial attack via
random search") with AutoAttack's settings: margin loss, p_init 0.8 and the fixed schedule (p halved after 10, 50,
200, 500, 1000, 2000, 4000, 6000 and 8000 queries, whatever the budget).

Linf: start from vertical stripes of ±eps; each query adds ±2·eps (a sign per channel) on a random s×s square of
side s = round(sqrt(p·d/c)) and keeps the candidate if it lowers the margin. L2: start from a grid of the paper's
"meta pseudo-Gaussian" patterns at norm eps; each query moves the perturbation mass of a second random window into a
new pattern on the first one (the paper's Algorithm 3).

Unlike the reference implementations, which draw one square position (and one pattern orientation) for the whole
batch per query, every point draws its own from its own stream: each point sees the same distribution of proposals,
and a point's proposals no longer depend on which points share its batch. Points leave the batch once fooled (margin
<= 0), as in the reference; every query is one forward pass.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import torch
from torch import nn

from .base import Outcome, margins, project, unit
from .noise import PointNoise

HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)  # p is halved after each of these query counts
CHUNK = 500  # proposals drawn per point at a time


def fraction(p_init: float, query: int) -> float:
    """The share p of the image a square covers at 0-based query `query`."""
    return p_init / 2 ** sum(query > bound for bound in HALVINGS)


@cache
def _rectangles(rows: int, cols: int) -> torch.Tensor:
    """Nested rectangles around the centre (rows // 2, cols // 2): the k-th (k = 1, 2, ...) spans k - 1 pixels on each
    side and adds 1 / k^2; scaled to unit L2 norm."""
    out = torch.zeros(rows, cols)
    for k in range(max(rows // 2, cols // 2) + 1):
        top, left = rows // 2 - k, cols // 2 - k
        out[max(top, 0):min(top + 2 * k + 1, rows), max(left, 0):min(left + 2 * k + 1, cols)] += 1.0 / (k + 1) ** 2
    return out / out.norm() if out.numel() else out


@cache
def pattern(s: int) -> torch.Tensor:
    """The s×s pseudo-Gaussian pattern: rectangles of + on the top half and - on the bottom half, unit L2 norm."""
    out = torch.cat([_rectangles(s // 2, s), -_rectangles(s - s // 2, s)])
    return out / out.norm()


def _windows(v: torch.Tensor, s: int, size: int) -> torch.Tensor:
    """(n, size) booleans: position j lies in [v_i, v_i + s)."""
    j = torch.arange(size, device=v.device)
    return (j >= v[:, None]) & (j < v[:, None] + s)


def _mask(vh: torch.Tensor, vw: torch.Tensor, s: int, h: int, w: int) -> torch.Tensor:
    """(n, 1, h, w) float mask of each point's s×s window at (vh, vw)."""
    return (_windows(vh, s, h)[:, None, :, None] & _windows(vw, s, w)[:, None, None, :]).float()


def _index(vh: torch.Tensor, vw: torch.Tensor, s: int) -> tuple[torch.Tensor, ...]:
    """Advanced index selecting each point's s×s window of an (n, c, h, w) tensor as (n, s, s, c)."""
    j = torch.arange(s, device=vh.device)
    return (torch.arange(len(vh), device=vh.device)[:, None, None], slice(None),
            (vh[:, None] + j)[:, :, None], (vw[:, None] + j)[:, None, :])


def _oriented(s: int, flip: torch.Tensor) -> torch.Tensor:
    """(n, 1, s, s): the pattern, transposed where `flip`."""
    base = pattern(s).to(flip.device)
    return torch.where(flip[:, None, None], base.T, base)[:, None]


def _signs(u: torch.Tensor) -> torch.Tensor:
    return torch.sign(2 * u - 1)


@dataclass(frozen=True)
class Square:
    """Square Attack with `queries` queries per point in the `norm` ball of `eps`."""

    model: nn.Module
    norm: str
    eps: float
    queries: int
    p_init: float = 0.8

    def __call__(self, x: torch.Tensor, y: torch.Tensor, clean_logits: torch.Tensor, noise: PointNoise) -> Outcome:
        n, c = len(x), x.shape[1]
        x_best = self._start(x, noise)
        with torch.no_grad():
            logits = self.model(x_best).float()
        out_x, out_logits = x_best.clone(), logits.clone()
        queries = torch.ones(n, dtype=torch.int64, device=x.device)
        rows = torch.arange(n, device=x.device)
        margin = margins(logits, y)
        per_query = 2 + c if self.norm == "Linf" else 5 + c
        streams = noise.generators("queries")
        draws = torch.empty(0)
        for i in range(self.queries + 1):
            done = margin <= 0
            if done.any():  # record the fooling example; the point leaves
                out_x[rows[done]], out_logits[rows[done]] = x_best[done], logits[done]
                queries[rows[done]] = 1 + i
                keep = ~done
                rows, x, y, x_best, logits, margin = rows[keep], x[keep], y[keep], x_best[keep], logits[keep], \
                    margin[keep]
                draws = draws[keep] if len(draws) else draws
            if i == self.queries or not len(rows):
                break
            if i % CHUNK == 0:
                draws = torch.stack([torch.rand(CHUNK, per_query, generator=streams[r]) for r in rows.tolist()]
                                    ).to(x.device)
            step = self._linf_step if self.norm == "Linf" else self._l2_step
            x_new = step(x, x_best, fraction(self.p_init, i), draws[:, i % CHUNK])
            with torch.no_grad():
                new_logits = self.model(x_new).float()
            new_margin = margins(new_logits, y)
            better = new_margin < margin
            x_best = torch.where(better.view(-1, 1, 1, 1), x_new, x_best)
            logits = torch.where(better[:, None], new_logits, logits)
            margin = torch.where(better, new_margin, margin)
        out_x[rows], out_logits[rows] = x_best, logits
        queries[rows] = 1 + self.queries
        return Outcome(out_x, out_logits, queries)

    def _start(self, x: torch.Tensor, noise: PointNoise) -> torch.Tensor:
        c, h, w = x.shape[1:]
        if self.norm == "Linf":  # vertical stripes: a sign per channel and column
            return (x + self.eps * _signs(noise.uniform("init", (c, 1, w), x.device))).clamp(0.0, 1.0)
        s = max(h // 5, 1)
        first = (h - 5 * s) // 2
        blocks = [(top, left) for top in range(first, h - s + 1, s)[:h // s]
                  for left in range(first, w - s + 1, s)[:w // s]]
        u = noise.uniform("init", (len(blocks), c + 1), x.device)
        delta = torch.zeros_like(x)
        for b, (top, left) in enumerate(blocks):
            patch = _oriented(s, u[:, b, c] > 0.5) * _signs(u[:, b, :c])[:, :, None, None]
            delta[:, :, top:top + s, left:left + s] += patch
        return (x + unit(delta, "L2") * self.eps).clamp(0.0, 1.0)

    @staticmethod
    def _side(p: float, x: torch.Tensor, smallest: int) -> int:
        """Side of a square covering a share p of the image (at least `smallest`, at most the image)."""
        h, w = x.shape[2:]
        return min(max(round(math.sqrt(p * h * w)), smallest), h, w)

    def _linf_step(self, x: torch.Tensor, x_best: torch.Tensor, p: float, u: torch.Tensor) -> torch.Tensor:
        c, h, w = x.shape[1:]
        s = self._side(p, x, 1)
        vh, vw = (u[:, 0] * (h - s)).long(), (u[:, 1] * (w - s)).long()
        square = _mask(vh, vw, s, h, w) * _signs(u[:, 2:2 + c])[:, :, None, None]
        return project(x_best + 2 * self.eps * square, x, "Linf", self.eps)

    def _l2_step(self, x: torch.Tensor, x_best: torch.Tensor, p: float, u: torch.Tensor) -> torch.Tensor:
        c, h, w = x.shape[1:]
        s = self._side(p, x, 3)
        s = min(s + 1 - s % 2, h, w)  # odd side
        vh, vw, vh2, vw2 = ((u[:, k] * ((h, w)[k % 2] - s)).long() for k in range(4))
        delta = x_best - x
        first = _index(vh, vw, s)
        old = delta[first].permute(0, 3, 1, 2)  # (n, c, s, s)
        old_norm = old.square().sum(dim=(2, 3), keepdim=True).sqrt()
        mask, mask2 = _mask(vh, vw, s, h, w), _mask(vh2, vw2, s, h, w)
        image_norm = delta.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        moved = (delta * torch.max(mask, mask2)).square().sum(dim=(2, 3), keepdim=True).sqrt()
        new = _oriented(s, u[:, 4 + c] > 0.5) * _signs(u[:, 4:4 + c])[:, :, None, None] + old / (1e-12 + old_norm)
        budget = ((self.eps ** 2 - image_norm ** 2).clamp(min=0) / c + moved ** 2).sqrt()
        new = new / (1e-12 + new.square().sum(dim=(2, 3), keepdim=True).sqrt()) * budget
        delta = delta * (1 - mask2)
        delta[first] = new.permute(0, 2, 3, 1)
        return (x + unit(delta, "L2") * self.eps).clamp(0.0, 1.0)

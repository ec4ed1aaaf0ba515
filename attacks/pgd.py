"""PGD (Madry et al. 2018) on cross-entropy with a random start, Linf (signed steps, the start uniform in the ball) or
L2 (normalised steps, the start Gaussian at a uniform radius in [0, eps]) — torchattacks' PGD and PGDL2 step for step.

Each point draws its start from its own stream, and leaves once an iterate fools the model (its example is that
iterate; torchattacks returns the last iterate, which may no longer fool it, so this finds every success it finds
and more). Untargeted, or towards a per-point target ('random' or 'least-likely', see `choose_targets`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .base import Outcome, choose_targets, project, unit
from .noise import PointNoise


@dataclass(frozen=True)
class PGD:
    """`steps` steps of size `alpha` within the `norm` ball of `eps`."""

    model: nn.Module
    norm: str
    eps: float
    alpha: float
    steps: int
    targeted: str = "none"

    def __call__(self, x: torch.Tensor, y: torch.Tensor, clean_logits: torch.Tensor, noise: PointNoise) -> Outcome:
        n = len(x)
        target = None if self.targeted == "none" else choose_targets(self.targeted, y, clean_logits, noise)
        x_adv = self._start(x, noise)
        out_x, out_logits = x_adv.clone(), clean_logits.clone()
        queries = torch.zeros(n, dtype=torch.int64, device=x.device)
        rows = torch.arange(n, device=x.device)
        for t in range(self.steps + 1):
            last = t == self.steps
            point = x_adv.detach().requires_grad_(not last)
            with torch.set_grad_enabled(not last):
                logits = self.model(point).float()
            hit = logits.argmax(dim=1) != y
            if last or hit.all():
                queries[rows] += 1
                out_x[rows], out_logits[rows] = x_adv, logits.detach()
                break
            loss = F.cross_entropy(logits, y, reduction="sum") if target is None else \
                -F.cross_entropy(logits, target, reduction="sum")
            grad, = torch.autograd.grad(loss, point)
            queries[rows] += 2
            if hit.any():  # fooled: record this iterate, leave the batch
                out_x[rows[hit]], out_logits[rows[hit]] = x_adv[hit], logits.detach()[hit]
                keep = ~hit
                rows, x, y, x_adv, grad = rows[keep], x[keep], y[keep], x_adv[keep], grad[keep]
                target = None if target is None else target[keep]
            ascent = grad.sign() if self.norm == "Linf" else unit(grad, "L2")
            x_adv = project(x_adv + self.alpha * ascent, x, self.norm, self.eps)
        return Outcome(out_x, out_logits, queries)

    def _start(self, x: torch.Tensor, noise: PointNoise) -> torch.Tensor:
        shape = tuple(x.shape[1:])
        if self.norm == "Linf":
            return (x + self.eps * (2 * noise.uniform("start", shape, x.device) - 1)).clamp(0.0, 1.0)
        radius = noise.uniform("radius", (1,) * len(shape), x.device)
        return (x + unit(noise.normal("start", shape, x.device), "L2") * radius * self.eps).clamp(0.0, 1.0)

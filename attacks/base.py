"""What every attack hands the engine (`Outcome`), and the small tensor helpers the native attacks share."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .noise import PointNoise


@dataclass
class Outcome:
    """One attack run on n points: a candidate per point, its logits and the model passes each point received.

    `x_adv` is the first example that fooled the model for a broken point and the attack's best candidate otherwise;
    `logits` are the model's logits at exactly `x_adv` (the pass that found it, so the engine needs no other);
    `queries` counts the forward and backward passes each point received (int64).
    """

    x_adv: torch.Tensor
    logits: torch.Tensor
    queries: torch.Tensor


# attack(x, y, clean_logits, noise) -> Outcome, on the still-unbroken points of one batch
AttackFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, PointNoise], Outcome]


def margins(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """z_y - max_{k != y} z_k per row (negative = misclassified)."""
    true = logits.gather(1, labels[:, None])[:, 0]
    other = logits.scatter(1, labels[:, None], float("-inf")).amax(dim=1)
    return true - other


def flat_norm(x: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-sample norm of `x` ('Linf', 'L1' or 'L2'), shaped (n, 1, ..., 1) to broadcast against `x`."""
    flat = x.flatten(1)
    size = flat.abs().amax(dim=1) if norm == "Linf" else flat.abs().sum(dim=1) if norm == "L1" else \
        flat.square().sum(dim=1).sqrt()
    return size.view(-1, *[1] * (x.dim() - 1))


def unit(x: torch.Tensor, norm: str) -> torch.Tensor:
    """`x` scaled to unit `norm` per sample (zero stays zero: the norm gets 1e-12 added, as in AutoAttack)."""
    return x / (flat_norm(x, norm) + 1e-12)


def project(x_adv: torch.Tensor, x: torch.Tensor, norm: str, eps: float) -> torch.Tensor:
    """`x_adv` moved into the eps-ball around `x` and then into [0, 1] (Linf: clipping; L2: radial scaling)."""
    if norm == "Linf":
        return torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0.0, 1.0)
    delta = x_adv - x
    return (x + unit(delta, "L2") * torch.clamp(flat_norm(delta, "L2"), max=eps)).clamp(0.0, 1.0)


def choose_targets(mode: str, y: torch.Tensor, clean_logits: torch.Tensor, noise: PointNoise) -> torch.Tensor:
    """Per-point target classes for targeted attacks: 'random' (uniform over the K-1 other classes, from the
    point's own stream) or 'least-likely' (the lowest clean logit other than the label)."""
    k = clean_logits.shape[1]
    if mode == "least-likely":
        return clean_logits.scatter(1, y[:, None], float("inf")).argmin(dim=1)
    draw = (noise.uniform("target", (1,), y.device)[:, 0] * (k - 1)).long().clamp(max=k - 2)
    return draw + (draw >= y).long()  # skip the label


def rank_targets(clean_logits: torch.Tensor, y: torch.Tensor, count: int) -> torch.Tensor:
    """AutoAttack's targets: the classes with the 2nd, 3rd, ... (count+1)-th largest clean logit, shape (n, count)."""
    order = clean_logits.argsort(dim=1, descending=True, stable=True)
    return order[:, 1:count + 1]


def in_turn(x: torch.Tensor, y: torch.Tensor, clean_logits: torch.Tensor, targets: torch.Tensor,
            attack: Callable[[torch.Tensor, int], Outcome]) -> Outcome:
    """Attack every point towards targets[:, 0], then targets[:, 1], ... until one run fools the model.

    `attack(rows, j)` attacks the points at `rows` towards their j-th target. A fooled point keeps that run's
    example; an unbroken one the candidate with the lowest margin (the clean image if no run lowered it).
    """
    out_x, out_logits = x.clone(), clean_logits.clone()
    best = margins(clean_logits, y)
    queries = torch.zeros(len(x), dtype=torch.int64, device=x.device)
    open_ = torch.ones(len(x), dtype=torch.bool, device=x.device)
    for j in range(targets.shape[1]):
        rows = open_.nonzero()[:, 0]
        if not len(rows):
            break
        run = attack(rows, j)
        queries[rows] += run.queries
        fooled = run.logits.argmax(dim=1) != y[rows]
        marg = margins(run.logits, y[rows])
        take = fooled | (marg < best[rows])
        out_x[rows[take]], out_logits[rows[take]], best[rows[take]] = run.x_adv[take], run.logits[take], marg[take]
        open_[rows[fooled]] = False
    return Outcome(out_x, out_logits, queries)

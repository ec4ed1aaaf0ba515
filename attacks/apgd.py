"""APGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of diverse parameter-free
attacks", Algorithm 1) on cross-entropy, DLR and targeted DLR, and the MALT target selection (Melamed, Yehudai &
Shamir 2024, "MALT Powers Up Adversarial Attacks").

The iteration is the paper's and the reference implementation's: a random start on the eps-sphere (uniform noise
rescaled to Linf norm eps, or Gaussian noise to L2 norm eps), step size 2·eps, momentum 0.75 after the first step,
checkpoints after 22% of the iterations and then at intervals shrinking by 3% down to 6%, where a point's step is
halved, and it restarts from its best point, if at most rho of the steps since the last checkpoint raised its loss,
or if its best loss did not improve and its step was not halved at the previous checkpoint.

What differs from torchattacks' APGD/APGDT, and why they are not used: every point draws its start from its own
stream (`PointNoise`), so results do not depend on the batch; a point leaves the batch as soon as an iterate fools the
model (its trajectory never depended on the others, so only wasted passes are saved; the recorded example is the first
fooling iterate instead of the last); the bookkeeping stays on the model's device (no per-step copy to the host); the
L2 step of torchattacks' APGDT uses the first point's step size for the whole batch; and model passes are counted.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .base import AttackFn, Outcome, in_turn, project, rank_targets, unit
from .noise import PointNoise

MOMENTUM = 0.75
INITIAL_STEP = 2.0  # times eps


def ce_loss(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    return F.cross_entropy(logits, y, reduction="none")


def dlr_loss(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """-(z_y - max_{k != y} z_k) / (z_pi1 - z_pi3): the difference of logits ratio (scale- and shift-invariant)."""
    top = logits.sort(dim=1).values
    other = logits.scatter(1, y[:, None], float("-inf")).amax(dim=1)
    return -(logits.gather(1, y[:, None])[:, 0] - other) / (top[:, -1] - top[:, -3] + 1e-12)


def dlr_targeted_loss(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2): DLR towards the target class t."""
    top = logits.sort(dim=1).values
    gap = logits.gather(1, y[:, None])[:, 0] - logits.gather(1, target[:, None])[:, 0]
    return -gap / (top[:, -1] - 0.5 * (top[:, -3] + top[:, -4]) + 1e-12)


LOSSES = {"ce": ce_loss, "dlr": dlr_loss, "dlr-targeted": dlr_targeted_loss}


def start_direction(noise: PointNoise, purpose: object, x: torch.Tensor, norm: str) -> torch.Tensor:
    """Each point's random start direction: uniform in [-1, 1]^d (Linf) or Gaussian (L2), from its own stream."""
    shape = tuple(x.shape[1:])
    if norm == "Linf":
        return 2 * noise.uniform(purpose, shape, x.device) - 1
    return noise.normal(purpose, shape, x.device)


@dataclass(frozen=True)
class APGD:
    """One APGD run of `steps` iterations on `loss` ('ce', 'dlr' or 'dlr-targeted') within the `norm` ball of `eps`."""

    model: nn.Module
    norm: str
    eps: float
    steps: int
    loss: str
    rho: float = 0.75
    eot_iter: int = 1

    def _evaluate(self, x_adv: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None):
        """(logits, loss, gradient averaged over eot_iter passes) at `x_adv`."""
        grad = torch.zeros_like(x_adv)
        for _ in range(self.eot_iter):
            point = x_adv.detach().requires_grad_(True)
            with torch.enable_grad():
                logits = self.model(point).float()
                loss = LOSSES[self.loss](logits, y, target)
            grad += torch.autograd.grad(loss.sum(), point)[0]
        return logits.detach(), loss.detach(), grad / self.eot_iter

    def run(self, x: torch.Tensor, y: torch.Tensor, direction: torch.Tensor,
            target: torch.Tensor | None = None) -> Outcome:
        """Attack the points (x, y) from x + eps·direction/‖direction‖.

        The example is the first fooling iterate of a fooled point and the highest-loss iterate otherwise; a point
        leaves the run when fooled, so its queries (forward and backward passes) stop there.
        """
        n = len(x)
        checkpoint = max(int(0.22 * self.steps), 1)
        shrink, shortest = max(int(0.03 * self.steps), 1), max(int(0.06 * self.steps), 1)
        x_adv = (x + self.eps * unit(direction, self.norm)).clamp(0.0, 1.0)
        logits, loss, grad = self._evaluate(x_adv, y, target)
        evals = 1
        out_x, out_logits = x_adv.clone(), logits.clone()
        queries = torch.zeros(n, dtype=torch.int64, device=x.device)
        w = _Working(rows=torch.arange(n, device=x.device), x=x, y=y, target=target, x_adv=x_adv,
                     x_old=x_adv, grad=grad, x_best=x_adv, grad_best=grad, loss_best=loss, logits_best=logits,
                     step=torch.full((n, *[1] * (x.dim() - 1)), INITIAL_STEP * self.eps, device=x.device),
                     history=torch.zeros(self.steps, n, device=x.device), loss_best_last=loss,
                     reduced_last=torch.ones(n, dtype=torch.bool, device=x.device))
        since = 0
        for i in range(self.steps + 1):
            hit = logits.argmax(dim=1) != w.y
            if hit.any():  # fooled: record this iterate, leave the batch
                rows = w.rows[hit]
                out_x[rows], out_logits[rows] = w.x_adv[hit], logits[hit]
                queries[rows] = 2 * self.eot_iter * evals
                keep = ~hit
                w, logits, loss = w.select(keep), logits[keep], loss[keep]
            if not len(w.rows):
                break
            if i > 0:
                improved = loss > w.loss_best
                where = improved.view(-1, *[1] * (x.dim() - 1))
                w.x_best = torch.where(where, w.x_adv, w.x_best)
                w.grad_best = torch.where(where, w.grad, w.grad_best)
                w.logits_best = torch.where(improved[:, None], logits, w.logits_best)
                w.loss_best = torch.where(improved, loss, w.loss_best)
                w.history[i - 1] = loss
                since += 1
                if since == checkpoint:
                    self._checkpoint(w, i - 1, checkpoint)
                    since, checkpoint = 0, max(checkpoint - shrink, shortest)
            if i == self.steps:
                break
            with torch.no_grad():
                momentum = MOMENTUM if i > 0 else 1.0
                previous, w.x_old = w.x_adv - w.x_old, w.x_adv
                ascent = w.grad.sign() if self.norm == "Linf" else unit(w.grad, "L2")
                first = project(w.x_adv + w.step * ascent, w.x, self.norm, self.eps)
                w.x_adv = project(w.x_adv + (first - w.x_adv) * momentum + previous * (1 - momentum), w.x,
                                  self.norm, self.eps)
            logits, loss, w.grad = self._evaluate(w.x_adv, w.y, w.target)
            evals += 1
        rows = w.rows
        out_x[rows], out_logits[rows] = w.x_best, w.logits_best
        queries[rows] = 2 * self.eot_iter * evals
        return Outcome(out_x, out_logits, queries)

    def _checkpoint(self, w: _Working, i: int, length: int) -> None:
        """Halve the step (and restart from the best point) where the loss oscillated or stalled."""
        recent = i - torch.arange(length, device=w.history.device)
        # steps that raised the loss over the last `length` iterations (before the first, the reference compares
        # with the zero-initialised last row of its history; kept for identical checkpoints)
        ups = (w.history[recent] > w.history[(recent - 1) % len(w.history)]).sum(dim=0)
        reduce = (ups <= length * self.rho) | (~w.reduced_last & (w.loss_best_last >= w.loss_best))
        w.reduced_last, w.loss_best_last = reduce, w.loss_best.clone()
        where = reduce.view(-1, *[1] * (w.x.dim() - 1))
        w.step = torch.where(where, w.step / 2, w.step)
        w.x_adv = torch.where(where, w.x_best, w.x_adv)
        w.grad = torch.where(where, w.grad_best, w.grad)


@dataclass
class _Working:
    """The per-point state of the points still in an APGD run (row i of every field is point rows[i])."""

    rows: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor
    target: torch.Tensor | None
    x_adv: torch.Tensor
    x_old: torch.Tensor
    grad: torch.Tensor
    x_best: torch.Tensor
    grad_best: torch.Tensor
    loss_best: torch.Tensor
    logits_best: torch.Tensor
    step: torch.Tensor
    history: torch.Tensor  # (steps, n): loss after each iteration
    loss_best_last: torch.Tensor
    reduced_last: torch.Tensor

    def select(self, keep: torch.Tensor) -> _Working:
        fields = {name: (value if value is None else value[:, keep] if name == "history" else value[keep])
                  for name, value in vars(self).items()}
        return _Working(**fields)


def apgd_attack(model: nn.Module, norm: str, eps: float, steps: int, loss: str, rho: float,
                eot_iter: int) -> AttackFn:
    """Untargeted APGD on `loss` ('ce' or 'dlr')."""
    apgd = APGD(model, norm, eps, steps, loss, rho, eot_iter)

    def attack(x, y, clean_logits, noise):
        return apgd.run(x, y, start_direction(noise, "start", x, norm))
    return attack


def malt_targets(model: nn.Module, x: torch.Tensor, y: torch.Tensor, norm: str, candidates: int,
                 count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """MALT's targets: among the `candidates` other classes with the largest logits, the `count` classes t with the
    smallest (z_y - z_t) / ‖∇z_y - ∇z_t‖_* (the dual norm: L1 for Linf, L2 for L2), i.e. the distance to the y/t
    decision boundary of the model linearised at x, in increasing order; shape (n, count).

    Returns (targets, queries): one forward pass and `candidates` backward passes per point.
    """
    point = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(point).float()
        pool = logits.detach().scatter(1, y[:, None], float("-inf")).argsort(dim=1, descending=True, stable=True)
        pool = pool[:, :min(candidates, logits.shape[1] - 1)]
        gaps = logits.gather(1, y[:, None]) - logits.gather(1, pool)  # (n, candidates)
        dual = "L1" if norm == "Linf" else "L2"
        distance = torch.empty_like(gaps)
        for j in range(pool.shape[1]):
            grad, = torch.autograd.grad(gaps[:, j].sum(), point, retain_graph=j + 1 < pool.shape[1])
            distance[:, j] = gaps[:, j].detach() / (grad.flatten(1).norm(p=1 if dual == "L1" else 2, dim=1) + 1e-12)
    order = distance.argsort(dim=1, stable=True)[:, :count]
    queries = torch.full((len(x),), 1 + pool.shape[1], dtype=torch.int64, device=x.device)
    return pool.gather(1, order), queries


def targeted_attack(model: nn.Module, norm: str, eps: float, steps: int, rho: float, eot_iter: int, targets: int,
                    candidates: int | None = None) -> AttackFn:
    """APGD on targeted DLR towards each point's targets in turn, until one fools the model: AutoAttack's APGD-T
    (the classes with the 2nd to (targets+1)-th largest clean logit) or, with `candidates`, MALT's targets."""
    apgd = APGD(model, norm, eps, steps, "dlr-targeted", rho, eot_iter)

    def attack(x, y, clean_logits, noise):
        if candidates is None:
            chosen, spent = rank_targets(clean_logits, y, targets), 0
        else:
            chosen, spent = malt_targets(model, x, y, norm, candidates, targets)

        def towards(rows: torch.Tensor, j: int) -> Outcome:
            xr = x[rows]
            return apgd.run(xr, y[rows], start_direction(noise.subset(rows.cpu()), ("start", j), xr, norm),
                            chosen[rows, j])
        outcome = in_turn(x, y, clean_logits, chosen, towards)
        outcome.queries += spent
        return outcome
    return attack

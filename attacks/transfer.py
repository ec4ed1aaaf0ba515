"""Attacks on models without a useful input gradient (int8): transfer from the float original, and BPDA through
the fake-quantised surrogate. Both judge every example by the evaluated model's own logits.

- Transfer (Papernot et al. 2016; Tramèr et al. 2017): the attack runs on the float original (its gradients, its
  stopping rule); each example it returns is then passed through the evaluated model, whose logits are recorded.
- BPDA (Athalye, Carlini & Wagner 2018): the attack runs on `StraightThrough(model, surrogate)`, whose forward
  values are the model's logits and whose input gradient is the surrogate's (the straight-through estimator of
  the int8 rounding), so the attack's own stopping rule and candidates already use the model's logits.

For a differentiable model (float, pruned) both proxies are the model itself: the attacks are plain white-box ones,
so one attack spec (e.g. `int8-robust`) evaluates an original and its int8 copy alike.
"""
from __future__ import annotations

import torch
from torch import nn

from robustbench_local.errors import ModelError
from robustbench_local.models import Classifier

from .base import AttackFn, Outcome
from .noise import PointNoise

ROLES = {"source": "float original (transfer attacks)", "surrogate": "fake-quantised surrogate (BPDA attacks)"}


def proxy(model: Classifier, role: str) -> Classifier:
    """`model`'s float stand-in for `role` ('source' or 'surrogate'): its own for an int8 model, else itself."""
    if not model.int8:
        return model
    stand_in = getattr(model.proxies, role, None) if model.proxies is not None else None
    if stand_in is None:
        raise ModelError(f"{model.name} is int8 but carries no {ROLES[role]}; write it with `rbl compress` (again, "
                         "if it predates surrogates), or attack it with --attack square")
    return stand_in.get().to(model.device).eval()


class StraightThrough(nn.Module):
    """The target's logits in the forward pass, the surrogate's input gradient in the backward pass (BPDA)."""

    def __init__(self, target: Classifier, surrogate: Classifier) -> None:
        super().__init__()
        self.target, self.surrogate = target, surrogate
        self.num_classes = target.num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        exact = self.target(x)
        if self.surrogate is self.target or not (x.requires_grad and torch.is_grad_enabled()):
            return exact
        approx = self.surrogate(x)
        return approx + (exact - approx).detach()


def bpda(model: Classifier) -> nn.Module:
    """`model` with its surrogate's gradient (itself when it is differentiable)."""
    surrogate = proxy(model, "surrogate")
    return model if surrogate is model else StraightThrough(model, surrogate)


class Transfer:
    """`inner` (an attack built on `source`) run on the source; its examples judged by `target`'s logits.

    The source's clean logits replace the target's for the inner attack (its targets come from the model it
    attacks); `queries` counts the source's passes (its clean pass included) plus the target's one pass per point.
    """

    def __init__(self, target: Classifier, source: Classifier, inner: AttackFn) -> None:
        self.target, self.source, self.inner = target, source, inner

    def __call__(self, x: torch.Tensor, y: torch.Tensor, clean_logits: torch.Tensor, noise: PointNoise) -> Outcome:
        if self.source is self.target:
            return self.inner(x, y, clean_logits, noise)
        with torch.no_grad():
            source_clean = self.source(x).float()
        found = self.inner(x, y, source_clean, noise)
        with torch.no_grad():
            logits = self.target(found.x_adv).float()
        return Outcome(found.x_adv, logits, found.queries + 2)

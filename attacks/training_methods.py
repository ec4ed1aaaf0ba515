"""Adversarial training objectives over torchattacks: PGD-AT (Madry et al.), TRADES (Zhang et al.), Fast-AT (Wong et al.).

Each method is a loss `method(model, x, y)`; adversarial examples are generated with the model in eval mode
(torchattacks' default: it switches the model to eval for the attack and restores training mode), so batch
statistics are updated only by the training forward pass.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torchattacks
from torch import nn

from robustbench_local.errors import SpecError
from robustbench_local.train_config import METHODS


@dataclass(frozen=True)
class Standard:
    """Plain cross-entropy on clean images."""

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(x), y)


@dataclass(frozen=True)
class PGDAT:
    """Madry et al.: cross-entropy on L∞ PGD examples (random start, `steps` steps of size `alpha`)."""

    eps: float
    alpha: float
    steps: int

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        adv = torchattacks.PGD(model, eps=self.eps, alpha=self.alpha, steps=self.steps, random_start=True)(x, y)
        return F.cross_entropy(model(adv), y)


@dataclass(frozen=True)
class TRADES:
    """Zhang et al.: CE(clean) + beta · KL(p_clean ‖ p_adv), the adversary maximising the KL (torchattacks TPGD)."""

    eps: float
    alpha: float
    steps: int
    beta: float = 6.0

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        adv = torchattacks.TPGD(model, eps=self.eps, alpha=self.alpha, steps=self.steps)(x)
        logits = model(x)
        kl = F.kl_div(F.log_softmax(model(adv), dim=1), F.softmax(logits, dim=1), reduction="batchmean")
        return F.cross_entropy(logits, y) + self.beta * kl


@dataclass(frozen=True)
class FastAT:
    """Wong et al. "fast is better than free": FGSM from a uniform random start, step 1.25·eps (torchattacks FFGSM)."""

    eps: float
    alpha: float

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        adv = torchattacks.FFGSM(model, eps=self.eps, alpha=self.alpha)(x, y)
        return F.cross_entropy(model(adv), y)




def default_eps(side: int) -> str:
    """The L∞ training radius for images `side` pixels across, as text: 8/255 (the CIFAR-10 convention) up to 64 px,
    4/255 (ImageNet's) above."""
    return "8/255" if side <= 64 else "4/255"


def make_method(name: str, eps: float, steps: int, alpha: float | None = None, beta: float = 6.0):
    """The training loss for `name`; alpha defaults to 2.5·eps/steps (PGD, TRADES) and 1.25·eps (Fast-AT)."""
    if name not in METHODS:
        raise SpecError(f"unknown training method {name!r}; use one of {', '.join(METHODS)}")
    if name == "standard":
        return Standard()
    if eps <= 0:
        raise SpecError(f"--eps must be positive for {name}, got {eps}; give the L∞ radius in [0,1] pixels")
    if steps < 1:
        raise SpecError(f"--steps must be at least 1, got {steps}")
    if name == "fast-at":
        return FastAT(eps, alpha or 1.25 * eps)
    alpha = alpha or 2.5 * eps / steps
    return PGDAT(eps, alpha, steps) if name == "pgd-at" else TRADES(eps, alpha, steps, beta)


def robust_accuracy(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], eps: float,
                    steps: int = 10) -> float:
    """L∞ PGD (`steps` steps of eps/4, random start) accuracy of `model` on batches (x, y), for model selection."""
    correct = total = 0
    for xb, yb in batches:
        adv = torchattacks.PGD(model, eps=eps, alpha=eps / 4, steps=steps, random_start=True)(xb, yb)
        with torch.no_grad():
            correct += int((model(adv).argmax(1) == yb).sum())
        total += len(yb)
    return correct / total

"""Training objectives: adversarial training over torchattacks, PGD-AT (Madry et al.), TRADES (Zhang et al.), Fast-AT
(Wong et al.), and distillation from a frozen teacher, KD (Hinton et al. 2015) and ARD (Goldblum et al. 2020).

Each method is a loss `method(model, x, y)`; adversarial examples are generated with the model in eval mode
(torchattacks' default: it switches the model to eval for the attack and restores training mode), so batch
statistics are updated only by the training forward pass. A teacher runs in eval mode without gradients.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
import torchattacks
from torch import nn

from robustbench_local.errors import SpecError
from robustbench_local.train_config import DISTILLATION, METHODS, distillation_settings


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


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float, kd_alpha: float,
                      clean: torch.Tensor | None = None, y: torch.Tensor | None = None) -> torch.Tensor:
    """kd_alpha·T²·KL(softmax(teacher/T) ‖ softmax(student/T)), averaged over the batch, plus (1 - kd_alpha) times
    the cross-entropy of the `clean` student logits with the labels `y` (needed when kd_alpha < 1). T² keeps the
    soft term's gradients on the scale of the hard term's whatever the temperature (Hinton et al. 2015)."""
    soft = F.kl_div(F.log_softmax(student.float() / temperature, dim=1),
                    F.log_softmax(teacher.float() / temperature, dim=1), reduction="batchmean", log_target=True)
    loss = kd_alpha * temperature**2 * soft
    return loss + (1 - kd_alpha) * F.cross_entropy(clean.float(), y) if kd_alpha < 1 else loss


def _frozen(teacher: nn.Module) -> nn.Module:
    """The teacher in eval mode with no parameter left to train."""
    return teacher.eval().requires_grad_(False)


@torch.no_grad()
def _teacher_logits(teacher: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return teacher(x)


@dataclass(frozen=True)
class Distill:
    """Hinton et al. 2015 knowledge distillation: the student matches the frozen teacher's temperature-softened
    outputs on the clean images, plus a (1 - kd_alpha) share of cross-entropy with the labels."""

    teacher: nn.Module = field(repr=False, compare=False)
    temperature: float = DISTILLATION["distill"][0]
    kd_alpha: float = DISTILLATION["distill"][1]

    def __post_init__(self) -> None:
        _frozen(self.teacher)

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = model(x)
        return distillation_loss(logits, _teacher_logits(self.teacher, x), self.temperature, self.kd_alpha, logits, y)


@dataclass(frozen=True)
class ARD:
    """Goldblum et al. 2020 adversarially robust distillation: the student's logits on L∞ PGD examples x+δ match the
    teacher's on the clean x, kd_alpha·T²·KL(T^T(x) ‖ S^T(x+δ)) + (1 - kd_alpha)·CE(S(x), y). δ maximises the
    student's cross-entropy with the labels (random start, `steps` steps of size `alpha`), as in the paper's code."""

    teacher: nn.Module = field(repr=False, compare=False)
    eps: float
    alpha: float
    steps: int
    temperature: float = DISTILLATION["ard"][0]
    kd_alpha: float = DISTILLATION["ard"][1]

    def __post_init__(self) -> None:
        _frozen(self.teacher)

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        adv = torchattacks.PGD(model, eps=self.eps, alpha=self.alpha, steps=self.steps, random_start=True)(x, y)
        clean = model(x) if self.kd_alpha < 1 else None
        return distillation_loss(model(adv), _teacher_logits(self.teacher, x), self.temperature, self.kd_alpha,
                                 clean, y)


def default_eps(side: int) -> str:
    """The L∞ training radius for images `side` pixels across, as text: 8/255 (the CIFAR-10 convention) up to 64 px,
    4/255 (ImageNet's) above."""
    return "8/255" if side <= 64 else "4/255"


def make_method(name: str, eps: float, steps: int, alpha: float | None = None, beta: float = 6.0,
                teacher: nn.Module | None = None, temperature: float | None = None, kd_alpha: float | None = None):
    """The training loss for `name`; alpha defaults to 2.5·eps/steps (PGD, TRADES, ARD) and 1.25·eps (Fast-AT).
    distill and ard need a `teacher` (frozen here), the others take none; temperature and kd_alpha default to
    `DISTILLATION`'s."""
    if name not in METHODS:
        raise SpecError(f"unknown training method {name!r}; use one of {', '.join(METHODS)}")
    temperature, kd_alpha = distillation_settings(name, teacher, temperature, kd_alpha)
    if name == "standard":
        return Standard()
    if name == "distill":
        return Distill(teacher, temperature, kd_alpha)
    if eps <= 0:
        raise SpecError(f"--eps must be positive for {name}, got {eps}; give the L∞ radius in [0,1] pixels")
    if steps < 1:
        raise SpecError(f"--steps must be at least 1, got {steps}")
    if name == "fast-at":
        return FastAT(eps, alpha or 1.25 * eps)
    alpha = alpha or 2.5 * eps / steps
    if name == "ard":
        return ARD(teacher, eps, alpha, steps, temperature, kd_alpha)
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

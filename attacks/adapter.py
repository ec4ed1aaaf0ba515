"""torchattacks attacks behind the engine's interface (`AttackFn`): per-point targets, counted model passes and the
logits of each returned example (one more forward pass, counted).

Used for the deterministic attacks (FGSM, CW, FAB-T with one restart: no random draw, so nothing depends on the batch);
the attacks with random starts have their own implementations (apgd.py, pgd.py, square.py) with per-point streams.
"""
from __future__ import annotations

import contextlib
import io
from collections.abc import Callable

import torch
import torchattacks
from torch import nn

from .base import Outcome, choose_targets, in_turn, rank_targets
from .noise import PointNoise


class CountingModel(nn.Module):
    """`model` unchanged, counting the rows of every forward and backward pass through it.

    It starts in `model`'s mode: torchattacks reads the mode before an attack and restores it afterwards, so a
    wrapper in the default training mode would leave the model training (and its BatchNorm statistics moving).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.passes = 0
        self.train(model.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        self.passes += len(x)
        if out.requires_grad:
            out.register_hook(self._backward)
        return out

    def _backward(self, grad: torch.Tensor) -> None:
        self.passes += len(grad)


class Torchattacks:
    """The torchattacks attack `make(model)`, untargeted or towards per-point targets ('random', 'least-likely').

    torchattacks' attacks treat every point of a call alike, so each point's passes are the call's rows divided by
    its points.
    """

    def __init__(self, make: Callable[[nn.Module], torchattacks.Attack], model: nn.Module,
                 targeted: str = "none") -> None:
        self.counter = CountingModel(model)
        with contextlib.redirect_stdout(io.StringIO()):  # torchattacks prints on construction and mode changes
            self.atk = make(self.counter)
        self.targeted = targeted

    def run(self, x: torch.Tensor, y: torch.Tensor, targets: torch.Tensor | None) -> Outcome:
        """The attack on (x, y), towards `targets` if given."""
        self.counter.passes = 0
        if targets is not None:
            self.atk.set_mode_targeted_by_function(lambda images, labels: targets, quiet=True)
        x_adv = self.atk(x.contiguous(), y).detach()  # torchattacks assumes the default layout (FAB views x)
        with torch.no_grad():
            logits = self.counter(x_adv).float()
        queries = torch.full((len(x),), -(-self.counter.passes // len(x)), dtype=torch.int64, device=x.device)
        return Outcome(x_adv, logits, queries)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, clean_logits: torch.Tensor, noise: PointNoise) -> Outcome:
        targets = None if self.targeted == "none" else choose_targets(self.targeted, y, clean_logits, noise)
        return self.run(x, y, targets)


def fab_targeted(model: nn.Module, norm: str, eps: float, steps: int, alpha_max: float, eta: float, beta: float,
                 targets: int, num_classes: int) -> Callable:
    """AutoAttack's FAB-T: torchattacks' FAB (one restart, no random start) towards the classes with the 2nd to
    (targets+1)-th largest clean logit in turn."""
    fab = Torchattacks(lambda m: torchattacks.FAB(m, norm=norm, eps=eps, steps=steps, n_restarts=1,
                                                  alpha_max=alpha_max, eta=eta, beta=beta, n_classes=num_classes,
                                                  seed=0), model)

    def attack(x, y, clean_logits, noise):
        chosen = rank_targets(clean_logits, y, targets)
        return in_turn(x, y, clean_logits, chosen, lambda rows, j: fab.run(x[rows], y[rows], chosen[rows, j]))
    return attack

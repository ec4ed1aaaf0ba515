"""Builders of the built-in attacks (`build(model, norm, eps, config, num_classes) -> AttackFn`), registered in
attacks/entries.py. APGD, PGD and Square are implemented here (apgd.py, pgd.py, square.py) so that each point draws
its random numbers from its own stream and leaves once fooled; FGSM, CW and FAB-T, which draw nothing at random,
are torchattacks' (adapter.py). The transfer and BPDA attacks wrap APGD-CE around an int8 model's float proxies
(transfer.py)."""
from __future__ import annotations

from typing import Any

import torchattacks
from torch import nn

from .adapter import Torchattacks, fab_targeted
from .apgd import apgd_attack, targeted_attack
from .base import AttackFn
from .pgd import PGD
from .square import Square
from .transfer import Transfer, bpda, proxy

PGD_STEP_FACTOR = 2.5  # Madry et al. 2018: step size 2.5 * eps / steps


def _targets(cfg: dict[str, Any], num_classes: int) -> int:
    return max(1, min(int(cfg["targets"]), num_classes - 1))


def fgsm(model: nn.Module, norm: str, eps: float, cfg: dict[str, Any], k: int) -> AttackFn:
    return Torchattacks(lambda m: torchattacks.FGSM(m, eps=eps), model, cfg["targeted"])


def pgd(model: nn.Module, norm: str, eps: float, cfg: dict[str, Any], k: int) -> AttackFn:
    steps = int(cfg["steps"])
    alpha = PGD_STEP_FACTOR * eps / steps if cfg["step_size"] == "auto" else float(cfg["step_size"])
    return PGD(model, norm, eps, alpha, steps, cfg["targeted"])


def cw(model: nn.Module, norm: str, eps: float, cfg: dict[str, Any], k: int) -> AttackFn:
    return Torchattacks(lambda m: torchattacks.CW(m, c=float(cfg["c"]), kappa=float(cfg["kappa"]),
                                                  steps=int(cfg["steps"]), lr=float(cfg["lr"])), model, cfg["targeted"])


def apgd_ce(model: nn.Module, norm: str, eps: float, cfg: dict[str, Any], k: int) -> AttackFn:
    return apgd_attack(model, norm, eps, int(cfg["steps"]), "ce", float(cfg["rho"]), int(cfg["eot_iter"]))


def apgd_dlr(model: nn.Module, norm: str, eps: float, cfg: dict[str, Any], k: int) -> AttackFn:
    return apgd_attack(model, norm, eps, int(cfg["steps"]), "dlr", float(cfg["rho"]), int(cfg["eot_iter"]))


def apgd_t(model: nn.Module, norm: str, eps: float, cfg: dict[str, Any], k: int) -> AttackFn:
    return targeted_attack(model, norm, eps, int(cfg["steps"]), float(cfg["rho"]), int(cfg["eot_iter"]),
                           _targets(cfg, k))


def apgd_malt(model: nn.Module, norm: str, eps: float, cfg: dict[str, Any], k: int) -> AttackFn:
    return targeted_attack(model, norm, eps, int(cfg["steps"]), float(cfg["rho"]), int(cfg["eot_iter"]),
                           _targets(cfg, k), candidates=int(cfg["candidates"]))


def fab_t(model: nn.Module, norm: str, eps: float, cfg: dict[str, Any], k: int) -> AttackFn:
    return fab_targeted(model, norm, eps, int(cfg["steps"]), float(cfg["alpha_max"]), float(cfg["eta"]),
                        float(cfg["beta"]), _targets(cfg, k), k)


def square(model: nn.Module, norm: str, eps: float, cfg: dict[str, Any], k: int) -> AttackFn:
    return Square(model, norm, eps, int(cfg["queries"]), float(cfg["p_init"]))


def bpda_apgd_ce(model: nn.Module, norm: str, eps: float, cfg: dict[str, Any], k: int) -> AttackFn:
    return apgd_ce(bpda(model), norm, eps, cfg, k)


def transfer_apgd_ce(model: nn.Module, norm: str, eps: float, cfg: dict[str, Any], k: int) -> AttackFn:
    source = proxy(model, "source")
    return Transfer(model, source, apgd_ce(source, norm, eps, cfg, k))

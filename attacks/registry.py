"""The attack registry: names, supported norms, protocol defaults (all in DEFAULTS), references and builders.

An attack spec is `NAME[?key=value&key=value]`; `A+B+C` is a sequence evaluated as a per-point worst case.
Composites expand to sequences: `autoattack` and `autoattack-rand` to the original AutoAttack (Croce & Hein 2020),
"standard" and "rand" versions, with the original settings (100 iterations, 9 target classes or K-1 when K < 10,
Square 5000 queries without rescaling); `aa-fast` to APGD-CE then APGD-T on MALT's targets (Melamed, Yehudai & Shamir
2024). `torchattacks.AutoAttack` itself (10 iterations, K-1 targets) is never used under any of these names.

Every attack is an `AttackFn` (base.py): APGD, PGD and Square are implemented here (apgd.py, pgd.py, square.py) so
that each point draws its random numbers from its own stream and leaves once fooled; FGSM, CW and FAB-T, which draw
nothing at random, are torchattacks' (adapter.py).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torchattacks
from torch import nn

from robustbench_local.errors import SpecError

from .adapter import Torchattacks, fab_targeted
from .apgd import apgd_attack, targeted_attack
from .base import AttackFn
from .pgd import PGD
from .square import Square
from .threat import parse_eps

# Protocol defaults of the literature, the one place they are written.
# pgd: Madry et al. 2018 (random start, step size 2.5 * eps / steps); apgd-*, fab-t, square: AutoAttack "standard"
# (Croce & Hein 2020); apgd-malt: MALT (Melamed et al. 2024: the `targets` classes with the smallest linearised
# distance among the `candidates` classes with the largest logits, APGD-T's 100 iterations each); cw: torchattacks'
# CW with more steps (no binary search over c).
DEFAULTS: dict[str, dict[str, Any]] = {
    "fgsm": {"targeted": "none"},
    "pgd": {"steps": 10, "step_size": "auto", "restarts": 1, "targeted": "none"},
    "cw": {"steps": 100, "c": 1.0, "kappa": 0.0, "lr": 0.01, "targeted": "none"},
    "apgd-ce": {"steps": 100, "restarts": 1, "rho": 0.75, "eot_iter": 1},
    "apgd-dlr": {"steps": 100, "restarts": 1, "rho": 0.75, "eot_iter": 1},
    "apgd-t": {"steps": 100, "restarts": 1, "targets": 9, "rho": 0.75, "eot_iter": 1},
    "apgd-malt": {"steps": 100, "restarts": 1, "targets": 5, "candidates": 100, "rho": 0.75, "eot_iter": 1},
    "fab-t": {"steps": 100, "restarts": 1, "targets": 9, "alpha_max": 0.1, "eta": 1.05, "beta": 0.9},
    "square": {"queries": 5000, "restarts": 1, "p_init": 0.8},
}
TARGETED_MODES = ("none", "random", "least-likely")
PGD_STEP_FACTOR = 2.5
MIN_CLASSES = {"apgd-dlr": 3, "apgd-t": 4, "apgd-malt": 4}  # DLR uses the 3rd, targeted DLR the 4th largest logit


@dataclass(frozen=True)
class Composite:
    """A named attack sequence and where it comes from."""

    members: tuple[tuple[str, dict[str, Any]], ...]
    summary: str


COMPOSITES: dict[str, Composite] = {
    "autoattack": Composite((("apgd-ce", {}), ("apgd-t", {}), ("fab-t", {}), ("square", {})),
                            "original AutoAttack, standard version (Croce & Hein 2020)"),
    "autoattack-rand": Composite((("apgd-ce", {"eot_iter": 20}), ("apgd-dlr", {"eot_iter": 20})),
                                 "original AutoAttack, rand version for stochastic models (Croce & Hein 2020)"),
    "aa-fast": Composite((("apgd-ce", {}), ("apgd-malt", {})),
                         "fast protocol: APGD-CE, then APGD-T on MALT's targets, no FAB-T or Square (Melamed, "
                         "Yehudai & Shamir 2024, 'MALT Powers Up Adversarial Attacks')"),
}


@dataclass(frozen=True)
class AttackDef:
    """One registered attack: norms, kind, whether it draws random numbers, and its builder."""

    name: str
    norms: tuple[str, ...]
    kind: str  # "gradient" or "black-box"
    random: bool  # restarts only make sense for attacks with random starts
    build: Callable[[nn.Module, str, float, dict[str, Any], int], AttackFn]
    minimum_norm: bool
    summary: str


@dataclass(frozen=True)
class AttackConfig:
    """A resolved member of an attack sequence: registered name and full configuration."""

    name: str
    config: dict[str, Any]

    @property
    def spec(self) -> AttackDef:
        return ATTACKS[self.name]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "config": self.config}


def _targets(cfg: dict[str, Any], num_classes: int) -> int:
    return max(1, min(int(cfg["targets"]), num_classes - 1))


def _fgsm(model, norm, eps, cfg, k):
    return Torchattacks(lambda m: torchattacks.FGSM(m, eps=eps), model, cfg["targeted"])


def _pgd(model, norm, eps, cfg, k):
    steps = int(cfg["steps"])
    alpha = PGD_STEP_FACTOR * eps / steps if cfg["step_size"] == "auto" else float(cfg["step_size"])
    return PGD(model, norm, eps, alpha, steps, cfg["targeted"])


def _cw(model, norm, eps, cfg, k):
    return Torchattacks(lambda m: torchattacks.CW(m, c=float(cfg["c"]), kappa=float(cfg["kappa"]),
                                                  steps=int(cfg["steps"]), lr=float(cfg["lr"])), model, cfg["targeted"])


def _apgd(loss: str):
    def build(model, norm, eps, cfg, k):
        return apgd_attack(model, norm, eps, int(cfg["steps"]), loss, float(cfg["rho"]), int(cfg["eot_iter"]))
    return build


def _apgd_t(model, norm, eps, cfg, k):
    return targeted_attack(model, norm, eps, int(cfg["steps"]), float(cfg["rho"]), int(cfg["eot_iter"]),
                           _targets(cfg, k))


def _apgd_malt(model, norm, eps, cfg, k):
    return targeted_attack(model, norm, eps, int(cfg["steps"]), float(cfg["rho"]), int(cfg["eot_iter"]),
                           _targets(cfg, k), candidates=int(cfg["candidates"]))


def _fab_t(model, norm, eps, cfg, k):
    return fab_targeted(model, norm, eps, int(cfg["steps"]), float(cfg["alpha_max"]), float(cfg["eta"]),
                        float(cfg["beta"]), _targets(cfg, k), k)


def _square(model, norm, eps, cfg, k):
    return Square(model, norm, eps, int(cfg["queries"]), float(cfg["p_init"]))


ATTACKS: dict[str, AttackDef] = {a.name: a for a in (
    AttackDef("fgsm", ("Linf",), "gradient", False, _fgsm, False,
              "FGSM, one signed-gradient step of size eps (Goodfellow et al. 2015)"),
    AttackDef("pgd", ("Linf", "L2"), "gradient", True, _pgd, False,
              "PGD with random start, step 2.5*eps/steps (Madry et al. 2018); a point stops once fooled"),
    AttackDef("cw", ("L2",), "gradient", False, _cw, True,
              "Carlini-Wagner L2 (fixed c, no binary search); counts only examples within eps"),
    AttackDef("apgd-ce", ("Linf", "L2"), "gradient", True, _apgd("ce"), False,
              "APGD on cross-entropy (Croce & Hein 2020)"),
    AttackDef("apgd-dlr", ("Linf", "L2"), "gradient", True, _apgd("dlr"), False,
              "APGD on the DLR loss (needs >= 3 classes)"),
    AttackDef("apgd-t", ("Linf", "L2"), "gradient", True, _apgd_t, False,
              "APGD on targeted DLR, the top-9 (or K-1) classes as targets"),
    AttackDef("apgd-malt", ("Linf", "L2"), "gradient", True, _apgd_malt, False,
              "APGD on targeted DLR towards MALT's targets: the classes t with the smallest (z_y - z_t) / "
              "||grad z_y - grad z_t||_* among the top candidates (Melamed, Yehudai & Shamir 2024)"),
    AttackDef("fab-t", ("Linf", "L2"), "gradient", True, _fab_t, False,
              "targeted FAB, the top-9 (or K-1) classes as targets (Croce & Hein 2020)"),
    AttackDef("square", ("Linf", "L2"), "black-box", True, _square, False,
              "Square attack, score-based black box, 5000 queries (Andriushchenko et al. 2020)"),
)}


def restarts(member: AttackConfig) -> int:
    """How many times the engine runs `member` (random restarts; 1 for deterministic attacks)."""
    return int(member.config.get("restarts", 1)) if member.spec.random else 1


def build_attack(member: AttackConfig, model: nn.Module, norm: str, eps: float, num_classes: int) -> AttackFn:
    """The attack function for one member."""
    needed = MIN_CLASSES.get(member.name, 2)
    if num_classes < needed:
        raise SpecError(f"attack {member.name} needs at least {needed} classes (its loss compares sorted logits), "
                        f"the model has {num_classes}; use apgd-ce, pgd or square")
    return member.spec.build(model, norm, eps, member.config, num_classes)


def _parse_value(key: str, text: str, default: Any) -> Any:
    if key == "step_size":
        return "auto" if text == "auto" else parse_eps(text)
    if key == "targeted":
        if text not in TARGETED_MODES:
            raise SpecError(f"targeted={text!r}: use one of {', '.join(TARGETED_MODES)}")
        return text
    try:
        value = type(default)(float(parse_eps(text)) if isinstance(default, float) else int(text))
    except (ValueError, SpecError):
        raise SpecError(f"{key}={text!r} must be a {type(default).__name__}") from None
    if value <= 0 and key not in ("kappa",):
        raise SpecError(f"{key}={text!r} must be positive")
    return value


def _query(text: str) -> dict[str, str]:
    pairs = {}
    for part in filter(None, text.split("&")):
        key, sep, value = part.partition("=")
        if not sep or not key or not value:
            raise SpecError(f"cannot read attack setting {part!r}; write key=value, e.g. pgd?steps=50")
        pairs[key.strip()] = value.strip()
    return pairs


def _configure(name: str, base: dict[str, Any], settings: dict[str, str], strict: bool) -> dict[str, Any]:
    cfg = {**DEFAULTS[name], **base}
    for key, text in settings.items():
        if key in cfg:
            cfg[key] = _parse_value(key, text, DEFAULTS[name][key])
        elif strict:
            raise SpecError(f"attack {name} has no setting {key!r}; its settings: {', '.join(DEFAULTS[name])}")
    return cfg


def parse_sequence(text: str, overrides: Mapping[str, Any] = {}) -> list[AttackConfig]:
    """Members of the attack sequence `text` ('pgd?steps=50', 'apgd-ce+square', 'autoattack').

    `overrides` (e.g. {'steps': 20}) apply to every member that has the setting.
    """
    members: list[AttackConfig] = []
    for item in filter(None, (part.strip() for part in text.split("+"))):
        name, _, query = item.partition("?")
        name = name.strip().lower()
        own = _query(query)
        settings = {**{k: str(v) for k, v in overrides.items() if v is not None}, **own}
        if name in COMPOSITES:
            parts = COMPOSITES[name].members
            known = {k for member, _ in parts for k in DEFAULTS[member]}
            unknown = set(own) - known
            if unknown:
                raise SpecError(f"{name} has no setting {', '.join(sorted(unknown))}; "
                                f"known: {', '.join(sorted(known))}")
            members += [AttackConfig(m, _configure(m, base, settings, False)) for m, base in parts]
        elif name in ATTACKS:
            strict = {k: v for k, v in settings.items() if k in own}
            loose = {k: v for k, v in settings.items() if k not in strict}
            cfg = _configure(name, {}, strict, True)
            members.append(AttackConfig(name, _configure(name, cfg, loose, False)))
        else:
            raise SpecError(f"unknown attack {name!r}; known: {', '.join([*ATTACKS, *COMPOSITES])} "
                            "(see `rbl list attacks`)")
    if not members:
        raise SpecError(f"empty attack spec {text!r}; name at least one attack, e.g. --attack pgd")
    return members


def check_norm(members: list[AttackConfig], norm: str, text: str) -> None:
    """Raise SpecError if a member of `text` does not support `norm`."""
    for m in members:
        if norm not in m.spec.norms:
            raise SpecError(f"attack {m.name} (in {text!r}) supports {'/'.join(m.spec.norms)} only, not {norm}; "
                            "choose another --norm or attack")


def describe() -> list[tuple[str, str]]:
    """(name, one-line description with norms and defaults) for `rbl list attacks`."""
    rows = []
    for a in ATTACKS.values():
        settings = ", ".join(f"{k}={v}" for k, v in DEFAULTS[a.name].items())
        rows.append((a.name, f"{a.summary} [{'/'.join(a.norms)}; {a.kind}; {settings}]"))
    for name, composite in COMPOSITES.items():
        seq = " -> ".join(m + "".join(f"?{k}={v}" for k, v in base.items()) for m, base in composite.members)
        rows.append((name, f"{composite.summary}; per-point worst case: {seq}"))
    return rows

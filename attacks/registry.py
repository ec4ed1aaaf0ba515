"""The attack registry over torchattacks: names, supported norms, protocol defaults (all in DEFAULTS) and builders.

An attack spec is `NAME[?key=value&key=value]`; `A+B+C` is a sequence evaluated as a per-point worst case;
`autoattack` and `autoattack-rand` expand to the sequences of the original AutoAttack (Croce & Hein 2020),
"standard" and "rand" versions, built from torchattacks' APGD, APGDT, FAB and Square with the original
settings (100 iterations, 9 target classes or K-1 when K < 10, Square 5000 queries without rescaling).
`torchattacks.AutoAttack` itself (10 iterations, K-1 targets) is never used under that name.
"""
from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torchattacks
from torch import nn

from robustbench_local.errors import SpecError

from .threat import parse_eps

# Protocol defaults of the literature, the one place they are written.
# pgd: Madry et al. 2018 (random start, step size 2.5 * eps / steps); apgd-*, fab-t, square: AutoAttack
# "standard" (Croce & Hein 2020); cw: torchattacks' CW with more steps (no binary search over c).
DEFAULTS: dict[str, dict[str, Any]] = {
    "fgsm": {"targeted": "none"},
    "pgd": {"steps": 10, "step_size": "auto", "restarts": 1, "targeted": "none"},
    "cw": {"steps": 100, "c": 1.0, "kappa": 0.0, "lr": 0.01, "targeted": "none"},
    "apgd-ce": {"steps": 100, "restarts": 1, "rho": 0.75, "eot_iter": 1},
    "apgd-dlr": {"steps": 100, "restarts": 1, "rho": 0.75, "eot_iter": 1},
    "apgd-t": {"steps": 100, "restarts": 1, "targets": 9, "rho": 0.75, "eot_iter": 1},
    "fab-t": {"steps": 100, "restarts": 1, "targets": 9, "alpha_max": 0.1, "eta": 1.05, "beta": 0.9},
    "square": {"queries": 5000, "restarts": 1, "p_init": 0.8},
}
COMPOSITES: dict[str, tuple[tuple[str, dict[str, Any]], ...]] = {
    "autoattack": (("apgd-ce", {}), ("apgd-t", {}), ("fab-t", {}), ("square", {})),
    "autoattack-rand": (("apgd-ce", {"eot_iter": 20}), ("apgd-dlr", {"eot_iter": 20})),
}
TARGETED_MODES = ("none", "random", "least-likely")
PGD_STEP_FACTOR = 2.5
MIN_CLASSES = {"apgd-dlr": 3, "apgd-t": 4}  # DLR uses the 3rd, targeted DLR the 4th largest logit


@dataclass(frozen=True)
class AttackDef:
    """One registered attack: norms, kind, whether it draws random numbers, builder and per-point budget."""

    name: str
    norms: tuple[str, ...]
    kind: str  # "gradient" or "black-box"
    random: bool  # restarts only make sense for attacks with random starts
    build: Callable[[nn.Module, str, float, dict[str, Any], int], torchattacks.Attack]
    budget: Callable[[dict[str, Any]], int]  # nominal model passes (iterations or queries) per point per restart
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


def _set_targeted(atk: torchattacks.Attack, mode: str) -> torchattacks.Attack:
    if mode == "random":
        atk.set_mode_targeted_random(quiet=True)
    elif mode == "least-likely":
        atk.set_mode_targeted_least_likely(quiet=True)
    return atk


def _fgsm(model, norm, eps, cfg, k):
    return _set_targeted(torchattacks.FGSM(model, eps=eps), cfg["targeted"])


def _pgd(model, norm, eps, cfg, k):
    steps = int(cfg["steps"])
    alpha = PGD_STEP_FACTOR * eps / steps if cfg["step_size"] == "auto" else float(cfg["step_size"])
    cls = torchattacks.PGD if norm == "Linf" else torchattacks.PGDL2
    return _set_targeted(cls(model, eps=eps, alpha=alpha, steps=steps, random_start=True), cfg["targeted"])


def _cw(model, norm, eps, cfg, k):
    atk = torchattacks.CW(model, c=float(cfg["c"]), kappa=float(cfg["kappa"]), steps=int(cfg["steps"]),
                          lr=float(cfg["lr"]))
    return _set_targeted(atk, cfg["targeted"])


def _apgd(loss: str):
    def build(model, norm, eps, cfg, k):
        return torchattacks.APGD(model, norm=norm, eps=eps, steps=int(cfg["steps"]), n_restarts=1, loss=loss,
                                 eot_iter=int(cfg["eot_iter"]), rho=float(cfg["rho"]), seed=0)
    return build


def _apgd_t(model, norm, eps, cfg, k):
    atk = torchattacks.APGDT(model, norm=norm, eps=eps, steps=int(cfg["steps"]), n_restarts=1,
                             eot_iter=int(cfg["eot_iter"]), rho=float(cfg["rho"]), n_classes=k, seed=0)
    atk.n_target_classes = _targets(cfg, k)
    return atk


def _fab_t(model, norm, eps, cfg, k):
    atk = torchattacks.FAB(model, norm=norm, eps=eps, steps=int(cfg["steps"]), n_restarts=1,
                           alpha_max=float(cfg["alpha_max"]), eta=float(cfg["eta"]), beta=float(cfg["beta"]),
                           multi_targeted=True, n_classes=k, seed=0)
    atk.n_target_classes = _targets(cfg, k)
    return atk


def _square(model, norm, eps, cfg, k):
    return torchattacks.Square(model, norm=norm, eps=eps, n_queries=int(cfg["queries"]), n_restarts=1,
                               p_init=float(cfg["p_init"]), loss="margin", resc_schedule=False, seed=0)


def _steps(cfg):
    return int(cfg["steps"]) * int(cfg.get("eot_iter", 1)) * int(cfg.get("_targets", 1))


ATTACKS: dict[str, AttackDef] = {a.name: a for a in (
    AttackDef("fgsm", ("Linf",), "gradient", False, _fgsm, lambda c: 1, False,
              "FGSM, one signed-gradient step of size eps (Goodfellow et al. 2015)"),
    AttackDef("pgd", ("Linf", "L2"), "gradient", True, _pgd, _steps, False,
              "PGD with random start, step 2.5*eps/steps (Madry et al. 2018); L2 via PGDL2"),
    AttackDef("cw", ("L2",), "gradient", False, _cw, _steps, True,
              "Carlini-Wagner L2 (fixed c, no binary search); counts only examples within eps"),
    AttackDef("apgd-ce", ("Linf", "L2"), "gradient", True, _apgd("ce"), _steps, False,
              "APGD on cross-entropy (Croce & Hein 2020)"),
    AttackDef("apgd-dlr", ("Linf", "L2"), "gradient", True, _apgd("dlr"), _steps, False,
              "APGD on the DLR loss (needs >= 3 classes)"),
    AttackDef("apgd-t", ("Linf", "L2"), "gradient", True, _apgd_t, _steps, False,
              "APGD on targeted DLR, the top-9 (or K-1) classes as targets"),
    AttackDef("fab-t", ("Linf", "L2"), "gradient", True, _fab_t, _steps, False,
              "targeted FAB, the top-9 (or K-1) classes as targets (Croce & Hein 2020)"),
    AttackDef("square", ("Linf", "L2"), "black-box", True, _square, lambda c: int(c["queries"]), False,
              "Square attack, score-based black box, 5000 queries (Andriushchenko et al. 2020)"),
)}


def budget(member: AttackConfig, num_classes: int) -> int:
    """Nominal model passes one restart of `member` spends on a point (iterations x EOT x targets, or queries)."""
    cfg = dict(member.config)
    if "targets" in cfg:
        cfg["_targets"] = _targets(cfg, num_classes)
    return member.spec.budget(cfg)


def restarts(member: AttackConfig) -> int:
    """How many times the engine runs `member` (random restarts; 1 for deterministic attacks)."""
    return int(member.config.get("restarts", 1)) if member.spec.random else 1


def build_attack(member: AttackConfig, model: nn.Module, norm: str, eps: float,
                 num_classes: int) -> torchattacks.Attack:
    """The torchattacks object for one member (torchattacks' mode-change messages are silenced)."""
    needed = MIN_CLASSES.get(member.name, 2)
    if num_classes < needed:
        raise SpecError(f"attack {member.name} needs at least {needed} classes (its loss compares sorted logits), "
                        f"the model has {num_classes}; use apgd-ce, pgd or square")
    with contextlib.redirect_stdout(io.StringIO()):
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
            parts = COMPOSITES[name]
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
    for name, parts in COMPOSITES.items():
        seq = " -> ".join(m + "".join(f"?{k}={v}" for k, v in base.items()) for m, base in parts)
        version = name.removeprefix("autoattack").strip("-") or "standard"
        rows.append((name, f"original AutoAttack {version} version, per-point worst case: {seq}"))
    return rows


def margins(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """z_y - max_{k != y} z_k per row (negative = misclassified)."""
    true = logits.gather(1, labels[:, None])[:, 0]
    other = logits.scatter(1, labels[:, None], float("-inf")).amax(dim=1)
    return true - other

"""Attack specs over the attack registry (`robustbench_local.registry.ATTACKS`, built-ins in attacks/entries.py).

An attack spec is `NAME[?key=value&key=value]`; `A+B+C` is a sequence evaluated as a per-point worst case.
Composites expand to sequences: `autoattack` and `autoattack-rand` to the original AutoAttack (Croce & Hein 2020),
"standard" and "rand" versions, with the original settings (100 iterations, 9 target classes or K-1 when K < 10,
Square 5000 queries without rescaling); `aa-fast` to APGD-CE then APGD-T on MALT's targets (Melamed, Yehudai & Shamir
2024). `torchattacks.AutoAttack` itself (10 iterations, K-1 targets) is never used under any of these names.
This module imports no torch: parsing and listing stay light; a builder is imported when an attack is built.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from robustbench_local.errors import SpecError
from robustbench_local.parsing import parse_fraction
from robustbench_local.registry import ATTACKS, Entry

from .entries import COMPOSITES

if TYPE_CHECKING:
    from torch import nn

    from .base import AttackFn

TARGETED_MODES = ("none", "random", "least-likely")


def defaults(name: str) -> dict[str, Any]:
    """The registered attack's default settings (a spec's `?key=value` overrides each)."""
    return dict(ATTACKS.get(name).meta["defaults"])


@dataclass(frozen=True)
class AttackConfig:
    """A resolved member of an attack sequence: registered name and full configuration."""

    name: str
    config: dict[str, Any]

    @property
    def spec(self) -> Entry:
        return ATTACKS.get(self.name)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "config": self.config}


def restarts(member: AttackConfig) -> int:
    """How many times the engine runs `member` (random restarts; 1 for deterministic attacks)."""
    return int(member.config.get("restarts", 1)) if member.spec.meta["random"] else 1


def build_attack(member: AttackConfig, model: nn.Module, norm: str, eps: float, num_classes: int) -> AttackFn:
    """The attack function for one member (its builder is imported now)."""
    needed = member.spec.meta["min_classes"]
    if num_classes < needed:
        raise SpecError(f"attack {member.name} needs at least {needed} classes (its loss compares sorted logits), "
                        f"the model has {num_classes}; use apgd-ce, pgd or square")
    return member.spec.load()(model, norm, eps, member.config, num_classes)


def _parse_value(key: str, text: str, default: Any) -> Any:
    if key == "step_size":
        return "auto" if text == "auto" else parse_fraction(text, "radius")
    if key == "targeted":
        if text not in TARGETED_MODES:
            raise SpecError(f"targeted={text!r}: use one of {', '.join(TARGETED_MODES)}")
        return text
    try:
        value = type(default)(parse_fraction(text, "radius") if isinstance(default, float) else int(text))
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
    own = defaults(name)
    cfg = {**own, **base}
    for key, text in settings.items():
        if key in cfg:
            cfg[key] = _parse_value(key, text, own[key])
        elif strict:
            raise SpecError(f"attack {name} has no setting {key!r}; its settings: {', '.join(own)}")
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
            known = {k for member, _ in parts for k in defaults(member)}
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
            raise SpecError(f"unknown attack {name!r}; known: {', '.join([*ATTACKS.names(), *COMPOSITES])} "
                            "(see `rbl list attacks`)")
    if not members:
        raise SpecError(f"empty attack spec {text!r}; name at least one attack, e.g. --attack pgd")
    return members


def check_norm(members: list[AttackConfig], norm: str, text: str) -> None:
    """Raise SpecError if a member of `text` does not support `norm`."""
    for m in members:
        norms = m.spec.meta["norms"]
        if norm not in norms:
            raise SpecError(f"attack {m.name} (in {text!r}) supports {'/'.join(norms)} only, not {norm}; "
                            "choose another --norm or attack")


def describe() -> list[tuple[str, str]]:
    """(name, one-line description with norms and defaults) for `rbl list attacks`."""
    rows = []
    for a in ATTACKS.entries():
        settings = ", ".join(f"{k}={v}" for k, v in a.meta["defaults"].items())
        rows.append((a.name, f"{a.description} ({a.reference}) [{'/'.join(a.meta['norms'])}; {a.meta['kind']}; "
                             f"{settings}]"))
    for name, composite in COMPOSITES.items():
        seq = " -> ".join(m + "".join(f"?{k}={v}" for k, v in base.items()) for m, base in composite.members)
        rows.append((name, f"{composite.summary}; per-point worst case: {seq}"))
    return rows

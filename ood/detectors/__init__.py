"""Detector selection over the detector registry (`robustbench_local.registry.DETECTORS`, built-ins declared in
ood/entries.py); importing this package imports no detector code."""
from __future__ import annotations

from typing import TYPE_CHECKING

from robustbench_local.errors import SpecError
from robustbench_local.registry import DETECTORS

from ..entries import FIT_TEMPERATURE

if TYPE_CHECKING:
    from .base import Detector


def parse_detectors(text: str) -> tuple[str, ...]:
    """`all` or a comma-separated list of registered names -> the names, in registry order for `all`."""
    names = tuple(dict.fromkeys(n.strip().lower() for n in text.split(",") if n.strip()))
    if names == ("all",):
        return tuple(DETECTORS)
    unknown = [n for n in names if n not in DETECTORS]
    if unknown or not names:
        raise SpecError(f"unknown detector(s) {', '.join(unknown) or '(none given)'}; known: "
                        f"{', '.join(DETECTORS)} or all (see `rbl list detectors`)")
    return names


def build(name: str, temperature: float | None = None) -> Detector:
    """A detector with its literature defaults; one fitted on the clean temperature (`msp_ts`) takes `temperature`."""
    parse_detectors(name)
    entry = DETECTORS.get(name)
    cls = entry.load()
    return cls(temperature=temperature) if entry.meta["fit_on"] == FIT_TEMPERATURE else cls()


def describe_detectors() -> list[tuple[str, str]]:
    """(name, one line: what it scores, what it consumes, what it is fitted on, paper) for `rbl list detectors`."""
    return [(e.name, f"{e.description} | consumes {'+'.join(e.meta['consumes'])} | fit: {e.meta['fit_on']} | "
                     f"{e.reference}") for e in DETECTORS.entries()]


__all__ = ["build", "describe_detectors", "parse_detectors"]

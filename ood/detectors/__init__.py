"""The detector registry: name -> class, and `build` for the selection a run asks for."""
from __future__ import annotations

from robustbench_local.errors import SpecError

from .base import FEATURES, FIT_TEMPERATURE, HEAD, INPUT_GRADIENT, LOGITS, Detector, DetectorInfo, energy_of
from .feature import ASH, DICE, KNN, Mahalanobis, ReAct, ViM
from .logit import GEN, MSP, Energy, MaxLogit, TemperatureMSP
from .odin import ODIN

DETECTORS: dict[str, type[Detector]] = {cls.name: cls for cls in (
    MSP, TemperatureMSP, MaxLogit, Energy, ODIN, Mahalanobis, KNN, ViM, ReAct, GEN, DICE, ASH)}


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
    """A detector with its literature defaults; `msp_ts` takes the run's clean-fitted `temperature`."""
    if name not in DETECTORS:
        parse_detectors(name)
    cls = DETECTORS[name]
    return cls(temperature=temperature) if cls.info.fit_on == FIT_TEMPERATURE else cls()


def describe_detectors() -> list[tuple[str, str]]:
    """(name, one line: what it scores, what it consumes, what it is fitted on, paper) for `rbl list detectors`."""
    return [(name, (f"{cls.info.summary} | consumes {'+'.join(cls.info.consumes)} | fit: {cls.info.fit_on} | "
                    f"{cls.info.paper}")) for name, cls in DETECTORS.items()]


__all__ = [
    "DETECTORS",
    "FEATURES",
    "HEAD",
    "INPUT_GRADIENT",
    "LOGITS",
    "Detector",
    "DetectorInfo",
    "build",
    "describe_detectors",
    "energy_of",
    "parse_detectors",
]

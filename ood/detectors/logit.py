"""Detectors on logits alone: MSP, temperature-scaled MSP, MaxLogit, Energy, GEN."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import softmax

from robustbench_local.errors import SpecError

from .. import defaults
from ..representations import Representations
from .base import Detector, energy_of


@dataclass
class MSP(Detector):
    """Maximum softmax probability, negated (a confidence turned into an outlier score)."""

    temperature: float = 1.0
    name = "msp"

    def score(self, reps: Representations) -> np.ndarray:
        return -softmax(np.asarray(reps.logits, np.float64) / self.temperature, axis=1).max(axis=1)


@dataclass
class TemperatureMSP(MSP):
    """MSP at the run's clean-fitted temperature (fitted once by the runner on ID val, never re-fitted here)."""

    temperature: float | None = None
    name = "msp_ts"

    def score(self, reps: Representations) -> np.ndarray:
        if self.temperature is None:
            raise SpecError("detector 'msp_ts' needs the run's clean-fitted temperature, and this run has none; "
                            "give the data a val split or pass --calibration-data DATA")
        return super().score(reps)


@dataclass
class MaxLogit(Detector):
    """Maximum logit, negated."""

    name = "maxlogit"

    def score(self, reps: Representations) -> np.ndarray:
        return -np.asarray(reps.logits, np.float64).max(axis=1)


@dataclass
class Energy(Detector):
    """Free energy −T·logsumexp(z/T) (already an outlier score)."""

    temperature: float = defaults.ENERGY_TEMPERATURE
    name = "energy"

    def score(self, reps: Representations) -> np.ndarray:
        return energy_of(reps.logits, self.temperature)


@dataclass
class GEN(Detector):
    """Generalised entropy Σ_top-M p^γ (1−p)^γ (higher = more uncertain = more OOD)."""

    gamma: float = defaults.GEN_GAMMA
    top_m: int = defaults.GEN_TOP_M
    name = "gen"

    def score(self, reps: Representations) -> np.ndarray:
        probs = np.sort(softmax(np.asarray(reps.logits, np.float64), axis=1), axis=1)[:, ::-1]
        top = probs[:, :self.top_m]
        return (top ** self.gamma * (1 - top) ** self.gamma).sum(axis=1)

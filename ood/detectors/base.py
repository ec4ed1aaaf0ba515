"""The detector interface: declared inputs and fitting, sklearn-style fit/score, score higher = more OOD."""
from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy.special import logsumexp

from robustbench_local.errors import ModelError
from robustbench_local.registry import DETECTORS, Entry

from ..entries import FEATURES, FIT_NONE, FIT_TEMPERATURE, FIT_TRAIN, FIT_VAL, HEAD, INPUT_GRADIENT, LOGITS
from ..representations import Representations

__all__ = ["FEATURES", "FIT_NONE", "FIT_TEMPERATURE", "FIT_TRAIN", "FIT_VAL", "HEAD", "INPUT_GRADIENT", "LOGITS",
           "Detector", "energy_of"]


class Detector:
    """Base class. Parameters are dataclass fields (so they show in the repr); `fit` sets array attributes
    whose names end in `_` (and nothing else), `score` reads them and returns one float per sample."""

    name: ClassVar[str]  # the name it is registered under

    @property
    def info(self) -> Entry:
        """Its registry entry: description, reference and the declared `consumes` and `fit_on`."""
        return DETECTORS.get(self.name)

    @property
    def requires_fit(self) -> bool:
        return self.info.meta["fit_on"] in (FIT_TRAIN, FIT_VAL)

    def fit(self, train: Representations | None, val: Representations | None) -> Detector:
        """Fit on ID training (or validation) representations; detectors without fitted state return self."""
        return self

    def score(self, reps: Representations) -> np.ndarray:
        """OOD scores of `reps`, higher = more OOD."""
        raise NotImplementedError

    def fitted_state(self) -> dict[str, np.ndarray]:
        """The fitted arrays (attributes ending in `_`), e.g. to cache them in an .npz."""
        return {k: v for k, v in vars(self).items() if k.endswith("_")}

    def load_state(self, state: dict[str, np.ndarray]) -> Detector:
        """Restore arrays from `fitted_state` (the inverse of caching)."""
        for key, value in state.items():
            setattr(self, key, np.asarray(value))
        return self

    def _check_fitted(self, *names: str) -> None:
        missing = [n for n in names if not hasattr(self, n)]
        if missing:
            raise ModelError(f"detector {self.name!r} is not fitted ({', '.join(missing)} missing); call fit() "
                             "on ID representations first")


def energy_of(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Free energy −T·logsumexp(z/T): higher = more OOD."""
    return -temperature * logsumexp(np.asarray(logits, np.float64) / temperature, axis=1)

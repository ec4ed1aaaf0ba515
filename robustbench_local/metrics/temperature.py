"""Temperature scaling (Guo et al. 2017) fitted to the NLL optimum by a bounded 1-D search over log T."""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from .contract import MetricSpec

T_BOUNDS = (1e-2, 1e2)
SPECS = (  # the rows of the run's `calibration` suite
    MetricSpec("temperature", True, T_BOUNDS[0], T_BOUNDS[1],
               "T* = argmin_T NLL(softmax(z/T)) on the held-out split; the interval of this row is not computed."),
    MetricSpec("flag_temperature_at_bound", False, 0.0, 1.0,
               "1 if the fitted temperature sits at a bound of [0.01, 100] (the NLL optimum lies outside)."),
)
LOG_T_BOUNDS = tuple(np.log(T_BOUNDS))


def nll_at(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of softmax(logits / T)."""
    logp = log_softmax(np.asarray(logits, np.float64) / temperature, axis=1)
    return float(-logp[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """T* = argmin_T NLL(softmax(z / T)) over T in [0.01, 100], solved in log T to the optimum (xatol 1e-8)."""
    if len(labels) == 0:
        raise ValueError("cannot fit a temperature on zero samples")
    result = minimize_scalar(lambda log_t: nll_at(logits, labels, float(np.exp(log_t))),
                             bounds=LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-8})
    return float(np.exp(result.x))


def temperature_at_bound(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float | None:
    """The search bound (0.01 or 100) whose NLL is as low as the fitted temperature's (within 1e-9), or None when
    the fit found an interior optimum. At 100 the NLL still falls as T grows: the logits say next to nothing about
    the labels (a near-constant model, or labels that do not belong to the images). At 0.01 it still falls as T
    shrinks: every prediction is right with a margin (too few or too easy images, or images seen in training)."""
    best = nll_at(logits, labels, temperature)
    return next((b for b in T_BOUNDS if nll_at(logits, labels, b) <= best + 1e-9), None)


def bound_notice(bound: float, temperature: float) -> str:
    """The one-line notice for a temperature fit that stopped at `bound` (see `temperature_at_bound`)."""
    meaning = ("the logits say next to nothing about the labels: a near-constant model, or labels that do not belong"
               " to the images" if bound == T_BOUNDS[1] else "every prediction is right with a margin: too few or too"
               " easy validation images, or images seen in training")
    return (f"notice: the fitted temperature {temperature:.3g} is set by the search bound {bound:g}, not by the data "
            f"({meaning}); the _ts metrics use it as it is (flag_temperature_at_bound = 1)")

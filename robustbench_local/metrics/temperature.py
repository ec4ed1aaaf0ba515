"""Temperature scaling (Guo et al. 2017) fitted to the NLL optimum by a bounded 1-D search over log T."""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

LOG_T_BOUNDS = (np.log(1e-2), np.log(1e2))


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

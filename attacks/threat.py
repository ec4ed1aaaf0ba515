"""Threat models: norm and radius parsing, perturbation norms, and the contract every adversarial example obeys."""
from __future__ import annotations

import numpy as np
import torch

from robustbench_local.errors import RBLError, SpecError
from robustbench_local.parsing import parse_fraction

NORMS = ("Linf", "L2")
TOLERANCE = 1e-6  # an adversarial example may leave the eps-ball (or [0, 1]) by at most this much


class AttackContractError(RBLError):
    """An attack returned an example outside the threat model (eps-ball or [0, 1]) or with non-finite pixels."""


def parse_norm(text: str) -> str:
    """'Linf'/'L2' (case-insensitive; 'inf' and '2' accepted) -> canonical name."""
    aliases = {"linf": "Linf", "inf": "Linf", "l2": "L2", "2": "L2"}
    key = text.strip().lower()
    if key not in aliases:
        raise SpecError(f"unknown norm {text!r}; use one of {', '.join(NORMS)}")
    return aliases[key]


def parse_eps(text: str) -> float:
    """A radius given as a decimal or a fraction ('8/255', '0.5') -> float >= 0."""
    return parse_fraction(text, "radius")


def check_radius(norm: str, eps: float, text: str) -> float:
    """`eps` if it is a radius of `norm`: Linf radii are pixel differences, in [0, 1]; an L2 radius (the norm of the
    whole perturbation, up to sqrt(C*H*W)) may exceed 1."""
    if norm == "Linf" and eps > 1:
        raise SpecError(f"eps {text} is outside [0, 1] for Linf: radii are in pixel units (images lie in [0, 1]); "
                        "give --eps (eps: in a config) radii such as 8/255 (only L2 radii may exceed 1)")
    return eps


def perturbation_norms(x_adv: torch.Tensor, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample (Linf, L2) norms of x_adv - x, as float64 numpy arrays."""
    delta = (x_adv.detach() - x.detach()).flatten(1).double()
    return delta.abs().amax(dim=1).cpu().numpy(), delta.norm(dim=1).cpu().numpy()


def verify_examples(x_adv: torch.Tensor, x: torch.Tensor, norm: str, eps: float, attack: str,
                    ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check the contract of every example (finite, in [0, 1], within eps in `norm`, up to TOLERANCE).

    Returns the (Linf, L2) perturbation norms; raises AttackContractError naming the attack and a sample id.
    """
    if x_adv.shape != x.shape:
        raise AttackContractError(f"attack {attack} returned shape {tuple(x_adv.shape)} for inputs of shape "
                                  f"{tuple(x.shape)}; an attack must return one example per input")
    flat = x_adv.detach().flatten(1)
    bad = ~torch.isfinite(flat).all(dim=1)
    if bad.any():
        raise AttackContractError(f"attack {attack} returned non-finite pixels for sample "
                                  f"{ids[int(bad.nonzero()[0, 0])]}; the model's gradients may be non-finite")
    low, high = flat.amin(dim=1), flat.amax(dim=1)
    outside = (low < -TOLERANCE) | (high > 1 + TOLERANCE)
    if outside.any():
        i = int(outside.nonzero()[0, 0])
        raise AttackContractError(f"attack {attack} returned pixels outside [0, 1] (min {float(low[i]):.6g}, "
                                  f"max {float(high[i]):.6g}) for sample {ids[i]}; the attack must clip to [0, 1]")
    linf, l2 = perturbation_norms(x_adv, x)
    size = linf if norm == "Linf" else l2
    over = size > eps + TOLERANCE
    if over.any():
        i = int(np.flatnonzero(over)[0])
        raise AttackContractError(f"attack {attack} returned an example with {norm} perturbation {size[i]:.8g} > "
                                  f"eps {eps:.8g} (+{TOLERANCE:g}) for sample {ids[i]}; it must project onto the "
                                  "eps-ball of the requested norm")
    return linf, l2

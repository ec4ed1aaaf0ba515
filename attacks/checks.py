"""Sanity checks against gradient masking and broken evaluations (after AutoAttack's checks.py).

Each check becomes a metric row `flag_<name>` with value 1 (fired) or 0, next to the numbers it is based on:
- `flag_randomized`: logits change between repeated passes in eval mode (normalised logits move > 1e-4 or
  a prediction flips) -> use `autoattack-rand` / EOT.
- `flag_probability_output`: outputs lie in [0, 1] and rows sum to 1 -> the model returns probabilities.
- `flag_zero_gradients`: more than ZERO_GRAD_SHARE of clean-correct points have an all-zero or non-finite input
  gradient of the margin loss z_y - max_{k != y} z_k (value of `zero_grad_share` alongside), and an attack of the
  sequence follows that gradient (kind "gradient"; transfer, BPDA and black-box attacks do not).
- `flag_int8_gradient_only`: the model is int8 (piecewise constant: its input gradient is zero almost everywhere)
  and every attack of the sequence follows its own gradient -> use `int8-robust` (BPDA, transfer, Square).
- `flag_bpda_weaker`: a transfer or black-box attack that ran after a BPDA attack broke more than BPDA_SHARE of
  all points: the surrogate's gradient misses what the float original's gradient or the logits alone find.
- `flag_blackbox_beats_gradient`: a black-box attack that ran after every gradient attack broke more than
  BLACKBOX_SHARE of all points (Carlini et al. 2019; AutoAttack's check_square_sr).
- `flag_robust_above_clean`: robust accuracy, or accuracy on the recorded examples, above clean accuracy.
- `flag_eps_not_decreasing` (sweep summary): robust accuracy rises with eps, or stays flat above 0 from the
  smallest to the largest eps of a sweep.
"""
from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

import numpy as np
import torch

from robustbench_local.metrics.contract import MetricSpec
from robustbench_local.models import Classifier
from robustbench_local.models.classifier import frozen_mode, to_tensor

from .base import margins

CHECK_POINTS = 32
REPEATS = 5
RANDOM_TOL = 1e-4
PROB_TOL = 1e-5
ZERO_GRAD_SHARE = 0.01
BLACKBOX_SHARE = 0.002
BPDA_SHARE = 0.02  # BPDA "much weaker": later transfer/black-box attacks break 2% of the points it left


def model_checks(model: Classifier, read: Callable[[np.ndarray], np.ndarray], labels: np.ndarray,
                 correct: np.ndarray) -> dict:
    """Randomness, probability-output and gradient checks on up to CHECK_POINTS points (model mode unchanged);
    `read(positions)` gives their uint8 NHWC images."""
    x = to_tensor(read(np.arange(min(CHECK_POINTS, len(labels)))), model.device).contiguous()
    with frozen_mode(model), torch.no_grad():
        outs = torch.stack([model(x).float() for _ in range(REPEATS)])
    unit = outs / outs.norm(dim=2, keepdim=True).clamp_min(1e-12)
    change = float((unit - unit[0]).abs().max())
    flips = bool((outs.argmax(dim=2) != outs[0].argmax(dim=1)).any())
    first = outs[0]
    probability = bool(first.min() > -PROB_TOL and first.max() < 1 + PROB_TOL
                       and (first.sum(dim=1) - 1).abs().max() < PROB_TOL)
    chosen = np.flatnonzero(correct)[:CHECK_POINTS]
    checked = labels[chosen]
    share = zero_gradient_share(model, read(chosen), checked)
    return {"randomized": change > RANDOM_TOL or flips, "max_logit_change": change,
            "probability_output": probability, "zero_grad_share": share, "zero_grad_points": len(checked),
            "int8": model.int8}


def zero_gradient_share(model: Classifier, images: np.ndarray, labels: np.ndarray) -> float:
    """Share of points whose margin-loss input gradient is all zero or non-finite (nan when no points)."""
    if len(labels) == 0:
        return float("nan")
    x = to_tensor(images, model.device).contiguous().requires_grad_(True)
    y = torch.from_numpy(labels.astype(np.int64)).to(model.device)
    with frozen_mode(model), torch.enable_grad():
        grad, = torch.autograd.grad(margins(model(x).float(), y).sum(), x)
    flat = grad.flatten(1)
    bad = (flat == 0).all(dim=1) | ~torch.isfinite(flat).all(dim=1)
    return float(bad.float().mean())

FLAG_SPECS = tuple(MetricSpec(f"flag_{name}", False, 0.0, 1.0, f"1 if the sanity check fired: {text}") for name, text in (
    ("randomized", "logits change between repeated passes in eval mode (use autoattack-rand / EOT)."),
    ("probability_output", "the model outputs probabilities (rows in [0, 1] summing to 1), not logits."),
    ("zero_gradients", "more than ZERO_GRAD_SHARE of clean-correct points have a zero or non-finite input gradient, "
     "and an attack of the sequence follows it."),
    ("int8_gradient_only", "the model is int8 (zero input gradient almost everywhere) and every attack follows its "
     "own gradient (use int8-robust: BPDA, transfer, Square)."),
    ("bpda_weaker", "a transfer or black-box attack after a BPDA attack broke more than BPDA_SHARE of the points."),
    ("blackbox_beats_gradient", "a black-box attack after every gradient attack broke more than BLACKBOX_SHARE."),
    ("robust_above_clean", "robust accuracy, or accuracy on the recorded examples, above clean accuracy."),
    ("eps_not_decreasing", "robust accuracy rises with eps, or stays flat above 0 over an implausible sweep."),
))

FLAG_HINTS = {  # what to do, added to the run's warning when the flag fires
    "int8_gradient_only": "the model is int8 and its gradient is zero: --attack int8-robust (BPDA, transfer from "
                          "its float original, Square) gives its robust accuracy",
    "bpda_weaker": "the BPDA surrogate misses what transfer or Square find: trust the worst case, not BPDA alone",
}


def condition_flags(checks: dict, broken_by: np.ndarray, kinds: list[tuple[str, str]], robust_acc: float,
                    adv_acc: float, clean_acc: float) -> dict[str, int]:
    """The per-condition flags (0/1) from the model checks and the records; `kinds` = [(attack, kind)] in order."""
    own_gradient = [kind == "gradient" for _, kind in kinds]
    flags = {"randomized": int(checks["randomized"]), "probability_output": int(checks["probability_output"]),
             "zero_gradients": int(any(own_gradient) and not np.isnan(checks["zero_grad_share"])
                                   and checks["zero_grad_share"] > ZERO_GRAD_SHARE),
             "int8_gradient_only": int(bool(checks.get("int8")) and bool(kinds) and all(own_gradient)),
             "robust_above_clean": int(max(robust_acc, adv_acc) > clean_acc)}
    later = _broken_after(broken_by, kinds, ("gradient",), ("black-box",))
    if later is not None:
        flags["blackbox_beats_gradient"] = int(later > BLACKBOX_SHARE)
    later = _broken_after(broken_by, kinds, ("bpda",), ("transfer", "black-box"))
    if later is not None:
        flags["bpda_weaker"] = int(later > BPDA_SHARE)
    return flags


def _broken_after(broken_by: np.ndarray, kinds: list[tuple[str, str]], first: tuple[str, ...],
                  then: tuple[str, ...]) -> float | None:
    """Share of all points broken by attacks of kinds `then` that ran after the last attack of kinds `first`
    (None when the sequence has no such pair)."""
    last = max((i for i, (_, kind) in enumerate(kinds) if kind in first), default=None)
    late = {name for name, kind in kinds[last + 1:] if kind in then} if last is not None else set()
    if not late:
        return None
    return float(np.isin(broken_by, list(late)).mean()) if len(broken_by) else 0.0


IMPLAUSIBLE_EPS = {"Linf": 0.25, "L2": 4.0}  # radii where no honest model keeps its clean accuracy intact


def sweep_flag(robust_by_eps: list[tuple[float, float]], norm: str) -> int:
    """1 if robust accuracy rises with eps, or does not fall at all although the sweep reaches an implausible
    radius (IMPLAUSIBLE_EPS; a flat curve at small radii is normal for a robust model)."""
    points = sorted(robust_by_eps)
    values = [acc for _, acc in points]
    if len(values) < 2:
        return 0
    rises = any(b > a for a, b in pairwise(values))
    flat = values[-1] >= values[0] > 0 and points[-1][0] >= IMPLAUSIBLE_EPS.get(norm, float("inf"))
    return int(rises or flat)

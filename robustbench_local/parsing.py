"""Reading the numbers users type in flags, config values and spec options, with one-line errors."""
from __future__ import annotations

import math

from .errors import SpecError


def parse_int(text: str, minimum: int, what: str = "") -> int:
    """An integer >= `minimum` written in ASCII digits ('12'); `what`, if given, names the value in the error."""
    digits = str(text).strip()
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 18 or int(digits) < minimum:
        raise SpecError(f"{what + ': ' if what else ''}expected an integer >= {minimum}, got {text!r}")
    return int(digits)


def parse_fraction(text: str, what: str) -> float:
    """A finite number >= 0 written as a decimal or a fraction ('0.5', '8/255', '1e-3'); `what` names it."""
    num, slash, den = str(text).strip().partition("/")
    try:
        value = float(num) / (float(den) if slash else 1.0)
    except (ValueError, ZeroDivisionError):
        raise SpecError(f"{what} takes a number or a fraction such as 8/255, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise SpecError(f"{what} must be a finite number >= 0, got {text!r}")
    return value


def check_levels(alphas: list[float], what: str) -> list[float]:
    """Miscoverage levels of conformal sets: distinct numbers in (0, 1); `what` names where they came from."""
    if any(not 0 < a < 1 for a in alphas) or len(set(alphas)) != len(alphas):
        raise SpecError(f"{what} must be distinct levels in (0, 1) such as 0.1,0.05 (90% and 95% sets), got "
                        f"{', '.join(f'{a:g}' for a in alphas)}")
    return alphas


def check_amount(text: str | float | None, what: str) -> float:
    """A pruning fraction strictly between 0 and 1 ('0.5'); `what` names it in the error."""
    try:
        amount = float(text)
    except (TypeError, ValueError):
        amount = math.nan
    if not 0 < amount < 1:
        raise SpecError(f"{what} takes the fraction of weights to prune, strictly between 0 and 1 (e.g. 0.5), "
                        f"got {text!r}")
    return amount

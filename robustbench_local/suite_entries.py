"""The built-in suites, in the order runs and listings show them (declarations only; nothing heavy is imported)."""
from __future__ import annotations

from .attacks.entries import SUITE as ATTACKS
from .corruptions.entries import SUITE as CORRUPTIONS
from .ood.entries import SUITE as OOD
from .suites import suite_entry

CLEAN = suite_entry("clean", "robustbench_local.clean:SUITE", "accuracy and calibration (ECE, MCE, classwise ECE, Brier, "
                    "NLL; raw and temperature-scaled)")
SUITES = (CLEAN, ATTACKS, CORRUPTIONS, OOD)

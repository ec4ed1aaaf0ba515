"""Adversarial robustness over torchattacks: registry (registry.py), threat model and contract (threat.py),
per-point worst-case engine (engine.py), sanity checks (checks.py) and the `attacks` suite (suite.py)."""
from .engine import PointState, run_sequence
from .registry import ATTACKS, COMPOSITES, DEFAULTS, parse_sequence
from .threat import AttackContractError

__all__ = ["ATTACKS", "COMPOSITES", "DEFAULTS", "AttackContractError", "PointState", "parse_sequence", "run_sequence"]

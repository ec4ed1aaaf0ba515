"""Rows for `rbl list corruptions`: every corruption, its category, randomness and parameter sets."""
from __future__ import annotations

from robustbench_local.registry import CORRUPTION_BACKENDS

from .names import ALL, DETERMINISTIC, PARAM_SETS, category_of


def corruption_rows() -> list[tuple[str, str]]:
    """(name, description) for each corruption, then the parameter sets and backends."""
    rows = []
    for number, name in enumerate(ALL):
        category = category_of(name)
        kind = "validation (held out)" if category == "validation" else f"common, {category}"
        rows.append((name, f"#{number} {kind}; {'deterministic' if name in DETERMINISTIC else 'random'}"))
    rows += [(f"--params {name}", text) for name, text in PARAM_SETS.items()]
    rows += [(f"--backend {entry.name}", entry.description) for entry in CORRUPTION_BACKENDS.entries()]
    return rows

"""The CLI's side-by-side headline table."""
from __future__ import annotations

import pandas as pd

from robustbench_local.cli.table import print_headline


def _metrics(value: float, n: int) -> pd.DataFrame:
    return pd.DataFrame([{"suite": "attacks", "condition": "pgd:Linf:0.1", "metric": "attack_success_rate",
                          "value": value, "ci_low": value - 0.01, "ci_high": value + 0.01, "n": n, "params": "{}"}])


def test_runs_with_different_denominators_share_one_row(capsys):
    """A ratio's n is its denominator (clean-correct points), which differs between models: still one row."""
    print_headline({"a": _metrics(0.5, 357), "b": _metrics(0.2, 353)})
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("attacks")]
    assert len(rows) == 1
    assert "0.5000" in rows[0] and "0.2000" in rows[0] and rows[0].endswith("357 / 353")

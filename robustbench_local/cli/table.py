"""Plain-text tables of headline metrics for the terminal."""
from __future__ import annotations

import click
import pandas as pd

from ..runner.execute import CALIBRATION_ROWS
from ..suites import get_suite


def format_value(value: float, low: float, high: float) -> str:
    if pd.isna(low):
        return f"{value:.4f}"
    return f"{value:.4f} [{low:.4f}, {high:.4f}]"


def _is_headline(row: pd.Series) -> bool:
    return row.metric in (("temperature",) if row.suite == CALIBRATION_ROWS else get_suite(row.suite).headline)


def print_headline(runs: pd.DataFrame | dict[str, pd.DataFrame]) -> None:
    """Each suite's headline metrics per condition with 95% bootstrap intervals; several runs side by side."""
    frames = {"value [95% CI]": runs} if isinstance(runs, pd.DataFrame) else runs
    cells: dict[tuple, dict[str, str]] = {}
    counts: dict[tuple, dict[str, int]] = {}  # n per run: a ratio's denominator can differ between models
    for column, metrics in frames.items():
        for _, r in metrics[metrics.apply(_is_headline, axis=1)].iterrows():
            key = (r.suite, r.condition, r.metric)
            cells.setdefault(key, {})[column] = format_value(r.value, r.ci_low, r.ci_high)
            counts.setdefault(key, {})[column] = int(r.n)
    if not cells:
        return
    header = ("suite", "condition", "metric", *frames, "n")
    rows = [(*key, *(v.get(col, "") for col in frames), " / ".join(map(str, dict.fromkeys(counts[key].values()))))
            for key, v in cells.items()]
    widths = [max(len(str(x[i])) for x in [*rows, header]) for i in range(len(header))]
    for line in [header, tuple("-" * w for w in widths), *rows]:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())

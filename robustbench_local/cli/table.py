"""Plain-text tables of headline metrics for the terminal."""
from __future__ import annotations

import click
import pandas as pd

from ..suites import get_suite


def format_value(value: float, low: float, high: float) -> str:
    if pd.isna(low):
        return f"{value:.4f}"
    return f"{value:.4f} [{low:.4f}, {high:.4f}]"


def print_headline(metrics: pd.DataFrame) -> None:
    """Each suite's headline metrics per condition, with 95% bootstrap intervals."""
    rows = []
    for _, r in metrics.iterrows():
        headline = ("temperature",) if r.suite == "calibration" else get_suite(r.suite).headline
        if r.metric in headline:
            rows.append((r.suite, r.condition, r.metric, format_value(r.value, r.ci_low, r.ci_high), int(r.n)))
    if not rows:
        return
    header = ("suite", "condition", "metric", "value [95% CI]", "n")
    widths = [max(len(str(x[i])) for x in rows + [header]) for i in range(len(header))]
    for line in [header, tuple("-" * w for w in widths), *rows]:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())

"""The side-by-side summary: one row per run, the suites' summary columns, each with its interval, and the flags."""
from __future__ import annotations

import pandas as pd

from .runs import ReportRun
from .sections import summary_columns
from .table import Table


def flags(run: ReportRun) -> str:
    """Names of the sanity flags that fired (flag_* rows with value 1), with their condition."""
    m = run.metrics
    fired = m[m["metric"].str.startswith("flag_") & (m["value"] >= 1)]
    return ", ".join(f"{r.metric[5:]} ({r.condition})" for r in fired.itertuples()) or "none"


def summary_table(runs: list[ReportRun]) -> Table:
    """Rows = runs; the headline figures side by side; the note explains the columns shown."""
    cols = summary_columns(runs)
    rows = [[run.label, *(c.get(run) for c in cols), flags(run)] for run in runs]
    notes = dict.fromkeys(c.note for c in cols if c.note)
    note = "; ".join(["Values are fractions with bootstrap 95% intervals [low, high]", *notes]) + "."
    return Table("Summary", ["model", *(c.header for c in cols), "flags"], rows, note, key="summary")


def long_rows(runs: list[ReportRun]) -> pd.DataFrame:
    """Every metric row of every run with the run label (the report's csv/json payload)."""
    frames = [run.metrics.drop(columns=["p"]).assign(run=run.label, run_dir=str(run.result.root)) for run in runs]
    return pd.concat(frames, ignore_index=True)

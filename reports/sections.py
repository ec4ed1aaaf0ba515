"""What a suite contributes to a report (sections, summary columns, calibration-under-shift views), the generic
headline section of a suite that brings none, and the collection of every suite's contributions."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from robustbench_local.errors import SpecError
from robustbench_local.runner.execute import CALIBRATION_ROWS
from robustbench_local.suites import all_suites, get_suite

from .runs import ReportRun
from .table import MISSING, Cell, Table, drop_empty

if TYPE_CHECKING:
    from robustbench_local.suites import Suite

Figure = tuple[str, str, bytes]  # (key, title, PNG bytes)
Lookup = Callable[[ReportRun], Cell | str]


@dataclass
class Section:
    """A titled part of the report: tables, then figures."""

    key: str
    title: str
    tables: list[Table]
    figures: list[Figure] = field(default_factory=list)


@dataclass(frozen=True)
class SummaryColumn:
    """A column of the cross-suite summary: its header, each run's cell, and a note on what it shows (said once per
    summary); `calibration` columns come after the others (the summary reads accuracy and robustness first)."""

    header: str
    get: Lookup
    note: str = ""
    calibration: bool = False


@dataclass(frozen=True)
class ShiftPanel:
    """A suite's panel of the 'ECE vs shift' figure: its x label and each run's (x, y) curve of a metric."""

    xlabel: str
    curve: Callable[[ReportRun, str], tuple[np.ndarray, np.ndarray]]


def lookup(suite: str, metric: str, condition: str | None = None, **params) -> Lookup:
    """A lookup of one metric row's cell (see `ReportRun.cell`)."""
    return lambda run: run.cell(suite, metric, condition, **params)


def report_suites(runs: list[ReportRun]) -> list[Suite | str]:
    """Every registered suite, then the names of suites the runs hold that are not registered (in run order)."""
    suites: list[Suite | str] = list(all_suites())
    known = {s.name for s in suites}
    for run in runs:
        for name in dict.fromkeys(run.metrics["suite"]):
            if name not in known:
                known.add(name)
                try:
                    get_suite(name)
                except SpecError:  # the rows of a suite this installation lacks (or the runner's own)
                    if name != CALIBRATION_ROWS:
                        suites.append(name)
    return suites


def headline_section(name: str, title: str, metrics: tuple[str, ...] | None, runs: list[ReportRun]) -> list[Section]:
    """The generic section of a suite without its own: `metrics` (all the suite's when None) per run and condition,
    value and interval; no section when the runs hold none of them."""
    frames = [run.rows(name) for run in runs]
    if metrics is None:
        metrics = tuple(dict.fromkeys(m for f in frames for m in f["metric"]))
    rows = [[run.label, condition, *(run.cell(name, m, condition) for m in metrics)]
            for run, frame in zip(runs, frames, strict=True) for condition in dict.fromkeys(frame["condition"])]
    table = drop_empty(Table(title, ["model", "condition", *metrics], rows,
                             "Headline metrics per condition, with bootstrap 95% intervals [low, high].",
                             label_columns=2, key=name))
    return [Section(name, title, [table])] if table else []


def suite_sections(runs: list[ReportRun], figures: bool) -> list[Section]:
    """Every suite's sections, in registry order; figures only when asked."""
    out = []
    for suite in report_suites(runs):
        if isinstance(suite, str):
            out += headline_section(suite, suite, None, runs)
        else:
            out += suite.report_sections(runs, figures)
    return out


def summary_columns(runs: list[ReportRun]) -> list[SummaryColumn]:
    """Every suite's summary columns that at least one run fills: accuracy and robustness, then calibration."""
    cols = [c for s in report_suites(runs) if not isinstance(s, str) for c in s.summary_columns(runs)]
    cols = [c for c in cols if any(c.get(run) != MISSING for run in runs)]
    return [c for c in cols if not c.calibration] + [c for c in cols if c.calibration]


def shift_panels(runs: list[ReportRun]) -> list[ShiftPanel]:
    """The suites' panels of the 'ECE vs shift' figure that the runs have data for."""
    return [p for s in report_suites(runs) if not isinstance(s, str) and (p := s.ece_shift_panel(runs)) is not None]


def reliability_views(run: ReportRun) -> list[tuple[str, str, list[str]]]:
    """(panel title, suite, conditions pooled) of every suite's reliability panels for one run."""
    return [(title, s.name, conditions) for s in report_suites([run]) if not isinstance(s, str)
            for title, conditions in s.reliability_panels(run)]

"""Assemble a report (summary, the suites' sections, glossary) and write it as md, html, csv and json."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from robustbench_local.errors import RunError, SpecError, os_reason
from robustbench_local.runner.store import atomic_write

from . import uncertainty
from .glossary import GLOSSARY
from .render_html import render_html
from .render_md import render_md
from .runs import ReportRun, load_runs
from .sections import Section, suite_sections
from .summary import long_rows, summary_table
from .table import Table

FORMATS = ("md", "html", "csv", "json")


@dataclass
class Report:
    runs: list[ReportRun]
    summary: Table
    sections: list[Section]

    def run_info(self) -> list[dict]:
        keys = ("model", "data", "n_samples", "seed", "model_fingerprint", "data_fingerprint")
        return [{"label": r.label, "run_dir": str(r.result.root), "temperature": r.temperature,
                 **{k: r.result.manifest.get(k) for k in keys}} for r in self.runs]


def parse_formats(text: str) -> tuple[str, ...]:
    """'md,html' -> ('md', 'html'); SpecError on an unknown format."""
    items = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    bad = [f for f in items if f not in FORMATS]
    if bad or not items:
        raise SpecError(f"unknown report format(s) {', '.join(bad) or repr(text)}; choose from {', '.join(FORMATS)}")
    return items


def build_report(runs: list[ReportRun], figures: bool = True) -> Report:
    """The summary, every suite's sections that the runs have data for, and the cross-suite section on selective
    prediction and conformal coverage; figures only when asked (md/html)."""
    return Report(runs, summary_table(runs), [*suite_sections(runs, figures), *uncertainty.sections(runs, figures)])


def write_report(run_dirs: list[str | Path], out: str | Path, formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Write the report of `run_dirs` into `out` in each format; returns the written main files."""
    runs = load_runs(run_dirs)
    report = build_report(runs, figures=bool({"md", "html"} & set(formats)))
    out = Path(out)
    written = []
    if "html" in formats:
        written.append(_write(out / "report.html", render_html(report).encode()))
    if "md" in formats:
        for key, _, png in (f for s in report.sections for f in s.figures):
            _write(out / "figures" / f"{key}.png", png)
        written.append(_write(out / "report.md", render_md(report, "figures").encode()))
    if "csv" in formats:
        written.append(_write(out / "summary.csv", summary_frame(report).to_csv(index=False).encode()))
        written.append(_write(out / "metrics_all.csv", long_rows(runs).to_csv(index=False).encode()))
    if "json" in formats:
        payload = {"runs": report.run_info(), "summary": report.summary.to_json(),
                   "sections": [{"key": s.key, "title": s.title, "tables": [t.to_json() for t in s.tables],
                                 "figures": [k for k, _, _ in s.figures]} for s in report.sections],
                   "glossary": dict(GLOSSARY)}
        written.append(_write(out / "report.json", json.dumps(payload, indent=1, allow_nan=False).encode()))
    return written


def summary_frame(report: Report) -> pd.DataFrame:
    """The summary as a tidy table: run, column, value, ci_low, ci_high, n, text."""
    rows = []
    for row in report.summary.rows:
        for column, value in zip(report.summary.columns[1:], row[1:], strict=True):
            cell = value.to_json() if hasattr(value, "to_json") else {"text": value}
            rows.append({"run": row[0], "column": column, **cell})
    frame = pd.DataFrame(rows, columns=["run", "column", "value", "ci_low", "ci_high", "n", "text"])
    return frame.astype({"n": "Int64"})


def _write(path: Path, data: bytes) -> Path:
    try:
        atomic_write(path, data)
    except OSError as exc:
        raise RunError(f"cannot write {path} ({os_reason(path, exc)}); choose another --out directory") from None
    return path

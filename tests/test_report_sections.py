"""Suites bring their own report sections: reports/ names no suite, and a suite defined in a test module appears in the
HTML and Markdown reports (a generic headline table, or its own sections) without any edit of reports/."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pandas as pd
import pytest
import toy_suite
from robustbench_local.corruptions.names import ALL, CATEGORIES
from robustbench_local.reports.build import write_report
from robustbench_local.reports.sections import Section, SummaryColumn, lookup
from robustbench_local.reports.table import Table

import robustbench_local as rbl
from robustbench_local import registry

REPORTS = Path(__file__).parents[1] / "reports"


def _literals(path: Path) -> set[str]:
    """Every string constant of a module, docstrings and f-string parts included."""
    return {node.value for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Constant)
            and isinstance(node.value, str)}


def test_reports_package_holds_no_suite_names_or_constants():
    banned = {*registry.SUITES, *CATEGORIES, *ALL, "near", "far", "common", "eps", "severity", "detector"}
    found = {path.name: sorted(banned & _literals(path)) for path in sorted(REPORTS.glob("*.py"))}
    assert {name: hits for name, hits in found.items() if hits} == {}


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> Path:
    """A run of the clean suite and the test module's toy suite (registered for this module only)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(registry.SUITES.added, "toy", toy_suite.ENTRY)
        return rbl.evaluate("builtin:digits-cnn", "builtin:digits", ["clean", "toy"],
                            out=tmp_path_factory.mktemp("toy"), limit=40, scales="1,3").root


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(registry.SUITES.added, "toy", toy_suite.ENTRY)


def _md_table(md: str, title: str) -> list[list[str]]:
    """The Markdown table after `**title**` (or a section's own heading) as rows of cell texts."""
    lines = md.split(title, 1)[1].split("\n\n", 2)[1].splitlines()
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines if not line.startswith("|---")]


def _cell_text(run: Path, condition: str, metric: str) -> str:
    m = pd.read_csv(run / "metrics.csv")
    row = m[(m.suite == "toy") & (m.condition == condition) & (m.metric == metric)].iloc[0]
    return f"{row.value:.3f} [{row.ci_low:.3f}, {row.ci_high:.3f}]"


def test_suite_without_sections_gets_a_headline_table(toy_run, registered, tmp_path):
    write_report([toy_run], tmp_path)
    md, html = (tmp_path / "report.md").read_text(), (tmp_path / "report.html").read_text()
    title = toy_suite.SUITE.description
    assert f"<summary><b>{title}</b></summary>" in md
    rows = _md_table(md, f"<summary><b>{title}</b></summary>")
    assert rows[0] == ["model", "condition", "acc"]
    assert rows[1:] == [["builtin:digits-cnn", c, _cell_text(toy_run, c, "acc")] for c in ("noise:1.0", "noise:3.0")]
    assert '<section id="toy"><h2>' in html and _cell_text(toy_run, "noise:3.0", "acc").split()[0] in html
    keys = [s["key"] for s in json.loads((tmp_path / "report.json").read_text())["sections"]]
    assert keys == ["calibration", "toy", "uncertainty"]


def test_unregistered_suite_in_a_run_still_shows_its_rows(toy_run, tmp_path):
    """A run holding a suite this installation lacks: a generic table of all its metrics, no crash."""
    write_report([toy_run], tmp_path, ("md",))
    rows = _md_table((tmp_path / "report.md").read_text(), "<summary><b>toy</b></summary>")
    assert rows[0][:3] == ["model", "condition", "acc"] and len(rows) == 3


class SectionedToy(toy_suite.ToySuite):
    """The toy suite with a section and a summary column of its own."""

    def report_sections(self, runs, figures=True):
        rows = [[run.label, run.cell("toy", "nll", "noise:3.0")] for run in runs]
        return [Section("toy-noise", "Noise robustness", [Table("Loss at the largest noise", ["model", "nll"], rows,
                                                                "nll under noise of scale 3.", key="toy_nll")])]

    def summary_columns(self, runs):
        return [SummaryColumn("toy acc (noise 1)", lookup("toy", "acc", "noise:1.0"), "toy acc is under noise 1")]


def test_suite_with_its_own_sections_and_summary_column(toy_run, registered, monkeypatch, tmp_path):
    monkeypatch.setattr(toy_suite, "SUITE", SectionedToy())
    write_report([toy_run], tmp_path)
    md, html = (tmp_path / "report.md").read_text(), (tmp_path / "report.html").read_text()
    assert _md_table(md, "**Loss at the largest noise**") == [["model", "nll"],
                                                              ["builtin:digits-cnn", _cell_text(toy_run, "noise:3.0",
                                                                                                "nll")]]
    assert "_nll under noise of scale 3._" in md and toy_suite.SUITE.description not in md
    summary = _md_table(md, "### Summary")
    assert summary[0] == ["model", "clean acc", "toy acc (noise 1)", "ECE raw", "ECE temp-scaled", "flags"]
    assert summary[1][2] == _cell_text(toy_run, "noise:1.0", "acc") and "toy acc is under noise 1" in md
    assert '<section id="toy-noise"><h2>Noise robustness</h2>' in html and '<table id="t-toy_nll">' in html


def test_report_of_a_run_with_only_a_new_suite(registered, tmp_path):
    """No built-in suite at all: the summary (flags only), the fitted temperature, and the toy section."""
    run = rbl.evaluate("builtin:digits-cnn", "builtin:digits", ["toy"], out=tmp_path / "run", limit=20,
                       scales="2").root
    write_report([run], tmp_path / "report")
    payload = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [s["key"] for s in payload["sections"]] == ["calibration", "toy", "uncertainty"]
    assert payload["summary"]["columns"] == ["model", "flags"]
    assert '<section id="toy">' in (tmp_path / "report" / "report.html").read_text()

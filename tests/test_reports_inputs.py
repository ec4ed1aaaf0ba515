"""`rbl report` on whatever the runs hold: every subset of the suites, alone and side by side with another run;
run, model and data names that hold HTML or Markdown."""
from __future__ import annotations

import html
import itertools
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from robustbench_local.reports.build import write_report

from robustbench_local.api import run_spec
from robustbench_local.cli import cli
from robustbench_local.progress import Progress
from robustbench_local.runner import EvalSpec
from robustbench_local.runner.store import RunStore

SUITES = ("clean", "attacks", "corruptions", "ood")
OPTIONS = {"clean": {}, "attacks": {"eps": "0,8/255", "steps": "2"},
           "corruptions": {"corruptions": "contrast,fog", "severities": "1,2"},
           "ood": {"detectors": "msp", "ood_limit": "20"}}
SUBSETS = [s for k in range(1, len(SUITES) + 1) for s in itertools.combinations(SUITES, k)]
SECTION = {"clean": "calibration", "attacks": "attacks", "corruptions": "corruptions", "ood": "ood"}


def _spec(suites: tuple[str, ...]) -> EvalSpec:
    return EvalSpec("builtin:digits-cnn", "builtin:digits", list(suites), limit=30,
                    options={k: v for s in suites for k, v in OPTIONS[s].items()})


@pytest.fixture(scope="module")
def subset_runs(tmp_path_factory) -> dict[tuple[str, ...], Path]:
    """A finished run of every non-empty subset of the suites, named after its suites.

    One run evaluates every suite; each subset run is a copy of it without the other suites' task files,
    resumed with its own suites (finished tasks are never recomputed), so all cost about one evaluation.
    """
    root = tmp_path_factory.mktemp("report-subsets")
    full = run_spec(_spec(SUITES), root / "all", Progress(True)).root
    runs = {}
    for suites in SUBSETS:
        store = RunStore(shutil.copytree(full, root / "+".join(suites)))
        for key in store.task_keys():
            if store.load_meta(key)["suite"] not in suites:
                store.task_path(key).unlink()
        runs[suites] = run_spec(_spec(suites), store.root, Progress(True)).root
    return runs


def _summary_columns(md: str) -> list[str]:
    header = md.split("### Summary", 1)[1].strip().splitlines()[0]
    return [c.strip() for c in header.strip("|").split("|")]


def _check_report(out: Path, dirs: list[Path], suites: set[str]) -> None:
    """Every format is written and holds exactly the sections of the suites the runs hold."""
    payload = json.loads((out / "report.json").read_text())
    with_logits = {"uncertainty"} if suites - {"ood"} else set()  # selective / conformal: suites that keep logits
    assert {s["key"] for s in payload["sections"]} == {"calibration"} | {SECTION[s] for s in suites} | with_logits
    assert len(payload["runs"]) == len(dirs)
    columns = _summary_columns((out / "report.md").read_text())
    assert ("clean acc" in columns) == ("clean" in suites)
    assert any(c.startswith("robust acc") for c in columns) == ("attacks" in suites)
    assert ("mean corruption acc" in columns) == ("corruptions" in suites)
    assert any(c.startswith("AUROC") for c in columns) == ("ood" in suites)
    html = (out / "report.html").read_text()
    for s in suites:
        assert f'<section id="{SECTION[s]}">' in html
    tidy = pd.read_csv(out / "summary.csv")
    assert sorted(set(tidy.run)) == sorted(r["label"] for r in payload["runs"])
    assert len(pd.read_csv(out / "metrics_all.csv")) == sum(len(pd.read_csv(d / "metrics.csv")) for d in dirs)


@pytest.mark.parametrize("suites", SUBSETS, ids="+".join)
def test_report_of_every_suite_subset(subset_runs, suites, tmp_path):
    """One run alone (through the CLI), then side by side with a run of the other suites (clean for all four)."""
    run = subset_runs[suites]
    result = CliRunner().invoke(cli, ["report", str(run), "--out", str(tmp_path / "one")])
    assert result.exit_code == 0, result.output
    _check_report(tmp_path / "one", [run], set(suites))

    other = tuple(s for s in SUITES if s not in suites) or ("clean",)
    pair = [run, subset_runs[other]]
    write_report(pair, tmp_path / "two")
    _check_report(tmp_path / "two", pair, set(suites) | set(other))
    write_report(pair, tmp_path / "tables", ("csv", "json"))  # without figures: the same tables
    for name in ("summary.csv", "metrics_all.csv"):
        assert (tmp_path / "tables" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    tables = [[s["tables"] for s in json.loads((tmp_path / d / "report.json").read_text())["sections"]]
              for d in ("tables", "two")]
    assert tables[0] == tables[1]


# ------------------------------------------------------------------ names that hold HTML and Markdown
HOSTILE_DIR = "m<script>alert(1)</script>|$x_{$"  # a folder of the model's weights path: the run label
HOSTILE_RUNS = ("run<img src=x onerror=alert(1)>|a", "run`b`|[c](javascript:d)")  # two runs of that model
HOSTILE_SET = "ood<i>|x"  # an OOD set's file name: its condition names and table headers
HTML_TAGS = {"html", "head", "meta", "title", "style", "body", "header", "h1", "p", "nav", "a", "main", "section",
             "h2", "h3", "div", "table", "thead", "tbody", "tr", "th", "td", "span", "figure", "img", "figcaption",
             "dl", "dt", "dd"}


@pytest.fixture(scope="module")
def hostile_runs(tmp_path_factory) -> list[Path]:
    """Two finished runs (clean, OOD) of one model whose weights path, run dirs and OOD set name hold markup."""
    import numpy as np

    import robustbench_local as rbl
    from robustbench_local import load_data
    from robustbench_local.model_catalog import ZOO_DIR

    root = tmp_path_factory.mktemp("hostile")
    weights = root / HOSTILE_DIR / "w.safetensors"
    weights.parent.mkdir(parents=True)
    shutil.copy(ZOO_DIR / "digits-cnn.safetensors", weights)
    test = load_data("builtin:digits", "test", 40)
    ood = root / f"{HOSTILE_SET}.npz"
    np.savez(ood, x=255 - test.images, y=test.labels)
    first = rbl.evaluate(str(weights), "builtin:digits", ["clean", "ood"], out=root / HOSTILE_RUNS[0],
                         arch="builtin:digits-cnn", limit=30, detectors="msp", ood_limit="20",
                         ood_data=f"near=npz:{ood},far=builtin:ood-textures").root
    return [first, shutil.copytree(first, root / HOSTILE_RUNS[1])]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _cells(line: str) -> list[str]:
    """A GFM table row split at its unescaped pipes; cells unescaped as a renderer shows them."""
    cells, cell, escaped = [], "", False
    for ch in line.strip()[1:-1]:
        if ch == "|" and not escaped:
            cells.append(cell)
            cell = ""
            continue
        escaped = ch == "\\" and not escaped
        cell += ch
    return [html.unescape(re.sub(r"\\(.)", r"\1", c.strip())) for c in [*cells, cell]]


def _md_tables(md: str) -> list[list[list[str]]]:
    blocks, current = [], []
    for line in [*md.splitlines(), ""]:
        if line.startswith("|"):
            current.append(_cells(line))
        elif current:
            blocks.append(current)
            current = []
    return blocks


def test_names_with_markup_are_escaped_in_html_and_markdown(hostile_runs, tmp_path):
    write_report(hostile_runs, tmp_path)
    payload = json.loads((tmp_path / "report.json").read_text())  # JSON is data: the names as they are
    labels = [r["label"] for r in payload["runs"]]
    assert all(HOSTILE_DIR in lab for lab in labels) and [r["run_dir"] for r in payload["runs"]] == list(
        map(str, hostile_runs))

    parser = _Tags()
    parser.feed((tmp_path / "report.html").read_text())
    assert {tag for tag, _ in parser.tags} <= HTML_TAGS
    assert all(attrs["src"].startswith("data:image/png;base64,") for tag, attrs in parser.tags if tag == "img")
    text = "".join(parser.text)
    assert all(lab in text for lab in labels) and f"npz-{HOSTILE_SET}.npz (near)" in text

    md = (tmp_path / "report.md").read_text()
    for run_dir in map(str, hostile_runs):
        assert re.search(r"(`+) ?" + re.escape(run_dir) + r" ?\1(?!`)", md), run_dir  # a verbatim code span
    prose = re.sub(r"(?<!`)(`+)(?!`).*?(?<!`)\1(?!`)", "", md)  # outside code spans, markup would be live
    assert set(re.findall(r"<(/?\w+)", prose)) <= {"details", "/details", "summary", "/summary", "b", "/b"}
    assert re.findall(r"(?<!\\)\]\(([^)]*)\)", prose) == [f"figures/{key}.png" for s in payload["sections"]
                                                       for key in s["figures"]]  # the only links
    tables = _md_tables(md)
    assert all(len({len(row) for row in table}) == 1 for table in tables)  # no name breaks a row
    summary = next(t for t in tables if t[0][0] == "model")
    assert [row[0] for row in summary[2:]] == labels
    assert any(f"npz-{HOSTILE_SET}.npz (near)" in table[0] for table in tables)


def test_gate_summary_escapes_condition_names(hostile_runs, tmp_path):
    rules = tmp_path / "gate.yaml"
    rules.write_text("rules:\n  - {metric: auroc, suite: ood, min: 0.0}\n")
    result = CliRunner().invoke(cli, ["gate", "--candidate", str(hostile_runs[0]), "--rules", str(rules),
                                      "--summary", str(tmp_path / "gate.md")])
    assert result.exit_code == 0, result.output
    md = (tmp_path / "gate.md").read_text()
    assert not re.findall(r"<\w", md)
    (table,) = _md_tables(md)
    assert len({len(row) for row in table}) == 1
    assert f"ood/npz-{HOSTILE_SET}.npz:msp" in [row[2] for row in table]

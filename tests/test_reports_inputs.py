"""`rbl report` on whatever the runs hold: every subset of the suites, alone and side by side with another run."""
from __future__ import annotations

import itertools
import json
import shutil
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
    assert {s["key"] for s in payload["sections"]} == {"calibration"} | {SECTION[s] for s in suites}
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

"""`rbl report`: tables match metrics.csv, the HTML is self-contained and renders in headless Chromium."""
from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image
from robustbench_local.reports.build import write_report

from robustbench_local.api import run_spec
from robustbench_local.cli import cli
from robustbench_local.progress import Progress
from robustbench_local.results import RunResult
from robustbench_local.runner import EvalSpec

SUITES = ["clean", "attacks", "corruptions", "ood"]
OPTIONS = {"eps": "0,8/255", "corruptions": "contrast,fog", "severities": "1,5", "detectors": "msp,energy",
           "ood_limit": 60}
ARTIFACTS = Path(__file__).parent / "artifacts"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two small finished runs (standard and adversarially trained built-in model) on the same 60 samples."""
    root = tmp_path_factory.mktemp("report-runs")
    out = {}
    for model in ("builtin:digits-cnn", "builtin:digits-cnn-at"):
        spec = EvalSpec(model, "builtin:digits", SUITES, limit=60, options=dict(OPTIONS))
        out[model] = run_spec(spec, root / model.split(":")[1], Progress(True)).root
    return out


@pytest.fixture(scope="module")
def two_run_report(runs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report-two")
    write_report(list(runs.values()), out)
    return out


def _expected(run_dir: Path, suite: str, metric: str, condition: str) -> str:
    """The cell text for one metrics.csv row, formatted independently of reports/."""
    m = pd.read_csv(run_dir / "metrics.csv")
    row = m[(m.suite == suite) & (m.metric == metric) & (m.condition == condition)].iloc[0]
    if pd.isna(row.ci_low):
        return f"{row.value:.3f}"
    return f"{row.value:.3f} [{row.ci_low:.3f}, {row.ci_high:.3f}]"


HEADLINE = [("clean acc", "clean", "acc", "clean"),
            ("robust acc pgd Linf ε=8/255", "attacks", "robust_acc", "pgd:Linf:8/255"),
            ("mean corruption acc", "corruptions", "mean_corruption_acc", "common"),
            ("AUROC near (energy)", "ood", "auroc_mean", "near:energy"),
            ("FPR@95 far (energy)", "ood", "fpr_at_95tpr_id_mean", "far:energy"),
            ("ECE raw", "clean", "ece_15_equal_width", "clean"),
            ("ECE temp-scaled", "clean", "ece_15_equal_width_ts", "clean")]


def _md_summary(md: str) -> dict[str, dict[str, str]]:
    lines = md.split("### Summary", 1)[1].strip().splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(header, cells, strict=True))
    return rows


def test_one_run_report_numbers_match_metrics_csv(runs, tmp_path):
    run_dir = runs["builtin:digits-cnn"]
    written = write_report([run_dir], tmp_path)
    assert {p.name for p in written} == {"report.html", "report.md", "summary.csv", "metrics_all.csv", "report.json"}
    summary = _md_summary((tmp_path / "report.md").read_text())
    assert list(summary) == ["builtin:digits-cnn"]
    for column, suite, metric, condition in HEADLINE:
        assert summary["builtin:digits-cnn"][column] == _expected(run_dir, suite, metric, condition), column
    for png in re.findall(r"\]\((figures/[\w.]+\.png)\)", (tmp_path / "report.md").read_text()):
        assert Image.open(tmp_path / png).size[0] > 0


def test_two_run_report_has_both_rows_and_exact_values(runs, two_run_report):
    summary = _md_summary((two_run_report / "report.md").read_text())
    assert list(summary) == list(runs)
    for label, run_dir in runs.items():
        for column, suite, metric, condition in HEADLINE:
            assert summary[label][column] == _expected(run_dir, suite, metric, condition), (label, column)
    tidy = pd.read_csv(two_run_report / "summary.csv")
    for label, run_dir in runs.items():
        m = pd.read_csv(run_dir / "metrics.csv")
        want = m[(m.suite == "attacks") & (m.metric == "robust_acc") & (m.condition == "pgd:Linf:8/255")].iloc[0]
        got = tidy[(tidy.run == label) & (tidy.column == "robust acc pgd Linf ε=8/255")].iloc[0]
        assert (got.value, got.ci_low, got.ci_high) == (want.value, want.ci_low, want.ci_high)
    payload = json.loads((two_run_report / "report.json").read_text())
    assert [r["label"] for r in payload["runs"]] == list(runs)
    assert {s["key"] for s in payload["sections"]} == {"calibration", "attacks", "corruptions", "ood", "uncertainty"}
    assert "fpr_at_95tpr_id" in payload["glossary"]


def test_detail_tables_match_metrics_csv(runs, two_run_report):
    md = (two_run_report / "report.md").read_text()
    label, run_dir = "builtin:digits-cnn-at", runs["builtin:digits-cnn-at"]
    fog5 = _expected(run_dir, "corruptions", "acc", "fog/5")  # the last column: second run, highest severity
    header = next(line for line in md.splitlines() if line.startswith("| corruption |"))
    assert header.rstrip(" |").endswith(f"{label} · sev 5")
    assert any(line.startswith("| fog |") and line.rstrip(" |").endswith(fog5) for line in md.splitlines())
    auroc = _expected(run_dir, "ood", "auroc", "stitched:msp")
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| model | detector | ") and "(near)" in line)
    column = [c.strip() for c in lines[start].strip("|").split("|")].index("stitched (near)")
    row = next(line for line in lines[start:] if line.startswith(f"| {label} | msp |"))
    assert [c.strip() for c in row.strip("|").split("|")][column] == auroc


def _images(html: str) -> list[bytes]:
    return [base64.b64decode(d) for d in re.findall(r'<img[^>]* src="data:image/png;base64,([^"]+)"', html)]


def test_html_is_self_contained(two_run_report):
    html = (two_run_report / "report.html").read_text()
    assert not re.search(r'(src|href)\s*=\s*["\']?\s*(https?:)?//', html)
    assert "<script" not in html.lower() and "<link" not in html.lower()
    images = _images(html)
    assert len(images) == html.count("<img") >= 7
    for png in images:
        assert png.startswith(b"\x89PNG") and min(Image.open(io.BytesIO(png)).size) > 0


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("chromium is not installed and apt-get is unavailable (`make test` installs Debian's chromium)")
    return path


def test_html_renders_in_headless_chromium(two_run_report, tmp_path):
    browser = _chromium()
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]
    url = (two_run_report / "report.html").resolve().as_uri()
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True).stdout
    for key in ("summary", "clean", "attacks", "corruption_means", "corruptions", "ood_means", "ood_sets"):
        assert f'<table id="t-{key}">' in dom, key
    assert dom.count("<tr>") > 40
    images = _images(dom)
    assert len(images) >= 7
    assert all(min(Image.open(io.BytesIO(png)).size) > 0 for png in images)
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report_screenshot.png"
    shot.unlink(missing_ok=True)
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1400,2000", url], capture_output=True,
                   timeout=120, check=True)
    image = Image.open(shot).convert("L")
    assert image.size == (1400, 2000)
    assert len(image.getcolors(maxcolors=1 << 16) or range(1 << 16)) > 50  # text and figures, not a blank page
    print(f"screenshot: {shot}")


def test_cli_report_writes_requested_formats(runs, tmp_path):
    result = CliRunner().invoke(cli, ["report", *map(str, runs.values()), "--out", str(tmp_path), "--format", "html,csv"])
    assert result.exit_code == 0, result.output
    assert result.output.split() == [str(tmp_path / n) for n in ("report.html", "summary.csv", "metrics_all.csv")]


@pytest.mark.parametrize("args, message", [
    (["report", "MISSING", "--out", "OUT"], "is not a finished run directory"),
    (["report", "RUN", "--out", "OUT", "--format", "md,pdf"], "unknown report format(s) pdf"),
    (["report", "RUN", "--out", "FILE/report"], "is a file, not a directory); choose another --out directory"),
])
def test_cli_report_bad_input_is_one_line_exit_2(runs, tmp_path, args, message):
    (tmp_path / "file").write_text("x")
    args = [{"MISSING": str(tmp_path / "none"), "OUT": str(tmp_path / "out"), "FILE/report": str(tmp_path / "file" / "r"),
             "RUN": str(runs["builtin:digits-cnn"])}.get(a, a) for a in args]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert message in result.output and result.output.strip().count("\n") == 0


def test_attack_table_shows_model_passes_beside_robust_accuracy(runs, two_run_report):
    """`mean_queries` (model passes per point, counted) sits in the column after robust accuracy, and it is the mean
    of the records' per-point counts (misclassified points count 0)."""
    label, run_dir = "builtin:digits-cnn-at", runs["builtin:digits-cnn-at"]
    lines = (two_run_report / "report.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| model | attack | norm | ε |"))
    assert [c.strip() for c in lines[start].strip("|").split("|")][4:6] == ["robust acc", "model passes / point"]
    row = next(line for line in lines[start:] if line.startswith(f"| {label} | pgd | Linf | 8/255 |"))
    cell = [c.strip() for c in row.strip("|").split("|")][5]
    assert cell == _expected(run_dir, "attacks", "mean_queries", "pgd:Linf:8/255")
    records = RunResult(run_dir).records
    attacked = records[(records.suite == "attacks") & (records.condition == "pgd:Linf:8/255")]
    assert float(cell.split()[0]) == pytest.approx(attacked.queries.mean(), abs=5e-4)  # then its [interval]
    correct = attacked.clean_correct.astype(bool)
    assert (attacked.queries[~correct] == 0).all() and (attacked.queries[correct] > 0).all()


def test_clean_accuracy_is_one_number_under_one_name(runs, two_run_report):
    """The attack table's ε = 0 row and the corruption means' clean row show the summary's clean acc, labelled so,
    with a note saying they are the same number."""
    md = (two_run_report / "report.md").read_text()
    label, run_dir = "builtin:digits-cnn-at", runs["builtin:digits-cnn-at"]
    clean = _expected(run_dir, "clean", "acc", "clean")
    assert _md_summary(md)[label]["clean acc"] == clean
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in md.splitlines()]
    assert next(r for r in rows if r[:4] == [label, "pgd", "Linf", "0 (clean acc)"])[4] == clean  # robust acc
    assert next(r for r in rows if r[:2] == [label, "clean (clean acc)"])[2] == clean  # mean corruption acc column
    assert md.count("the same logits, computed once") == 2

"""Selective and conformal metrics in a real run: rows with intervals per condition, the stored fit, the CLI levels,
the gate on the new metrics, and the report's section and figures."""
from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from robustbench_local.reports.build import build_report, write_report
from robustbench_local.reports.runs import load_runs
from robustbench_local.reports.uncertainty import risk_coverage

from robustbench_local.cli import cli
from robustbench_local.metrics import Predictions
from robustbench_local.metrics.conformal import ConformalFit
from robustbench_local.results import load_run

NEW = ("aurc", "eaurc", "augrc", "selective_risk_at_90", "coverage_at_risk_5", "misclassification_auroc",
       "aurc_ts", "misclassification_auroc_ts", "conformal_coverage_90", "conformal_set_size_95_aps",
       "conformal_coverage_gap_90", "conformal_coverage_size0to1_90")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("u") / "run"
    result = CliRunner().invoke(cli, ["evaluate", "builtin:digits-cnn", "--data", "builtin:digits", "--suite",
                                      "clean,corruptions", "--corruptions", "gaussian_noise,contrast",
                                      "--severities", "5", "--limit", "150", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_every_condition_has_the_new_rows_with_intervals(run_dir):
    metrics = load_run(run_dir).metrics
    conditions = metrics[metrics.metric == "acc"][["suite", "condition"]].drop_duplicates()
    assert len(conditions) >= 3
    for suite, condition in conditions.itertuples(index=False):
        rows = metrics[(metrics.suite == suite) & (metrics.condition == condition)].set_index("metric")
        for name in NEW:
            row = rows.loc[name]
            assert row.ci_low <= row.value <= row.ci_high or np.isnan(row.value), (suite, condition, name)


def test_thresholds_are_stored_with_the_temperature_and_levels_follow_the_flag(run_dir, tmp_path):
    stored = json.loads((run_dir / "calibration.json").read_text())["conformal"]
    fit = ConformalFit.from_dict(stored)
    assert fit.alphas == (0.1, 0.05) and fit.n == stored["n"] > 0 and "ceil((n + 1)(1 - alpha))" in stored["quantile"]
    out = tmp_path / "levels"
    result = CliRunner().invoke(cli, ["evaluate", "builtin:digits-cnn", "--data", "builtin:digits", "--limit", "60",
                                      "--conformal-alpha", "0.2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = set(load_run(out).metrics.metric)
    assert "conformal_coverage_80" in names and "conformal_coverage_90" not in names
    result = CliRunner().invoke(cli, ["evaluate", "builtin:digits-cnn", "--data", "builtin:digits", "--limit", "60",
                                      "--conformal-alpha", "0.1", "--out", str(out)])  # resumed: refit, recomputed
    names = set(load_run(out).metrics.metric)
    assert "conformal_coverage_90" in names and "conformal_coverage_80" not in names


@pytest.mark.parametrize("value", ["0", "1.5", "0.1,0.1", "abc"])
def test_bad_levels_are_one_line_exit_2(tmp_path, value):
    result = CliRunner().invoke(cli, ["evaluate", "builtin:digits-cnn", "--data", "builtin:digits", "--limit", "20",
                                      "--conformal-alpha", value, "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "conformal" in result.output and "Traceback" not in result.output


def test_gate_floor_on_conformal_coverage_judges_every_condition_of_the_suite(run_dir, tmp_path):
    """The rule of the issue: clean and noise keep their 90% coverage, maximal contrast does not (exit 1)."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"rules": [{"metric": "conformal_coverage_90", "suite": "corruptions",
                                                "min": 0.85}]}))
    result = CliRunner().invoke(cli, ["gate", "--candidate", str(run_dir), "--rules", str(rules)])
    assert result.exit_code == 1, result.output
    lines = {next(t for t in line.split() if t.startswith("corruptions/")): line.split()[0]
             for line in result.output.splitlines() if "conformal_coverage_90 min" in line}
    assert lines == {"corruptions/clean": "PASS", "corruptions/contrast/5": "FAIL",
                     "corruptions/gaussian_noise/5": "PASS"}


@pytest.mark.parametrize("floor, code", [(0.5, 0), (0.999, 1)])
def test_gate_rules_work_on_the_new_metrics(run_dir, tmp_path, floor, code):
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"rules": [
        {"metric": "conformal_coverage_90", "suite": "corruptions", "condition": "clean", "min": floor},
        {"metric": "aurc", "suite": "clean", "max": 0.5}, {"metric": "misclassification_auroc", "min": 0.5}]}))
    result = CliRunner().invoke(cli, ["gate", "--candidate", str(run_dir), "--rules", str(rules)])
    assert result.exit_code == code, result.output
    assert "conformal_coverage_90" in result.output and "misclassification_auroc" in result.output


def test_report_has_the_section_and_both_figures(run_dir, tmp_path):
    report = build_report(load_runs([run_dir]))
    section = next(s for s in report.sections if s.key == "uncertainty")
    assert [key for key, _, _ in section.figures] == ["risk_coverage", "coverage_under_shift"]
    table = section.tables[0]
    assert {row[1] for row in table.rows} == {"clean", "corruptions"}  # each suite's worst condition
    html, md = (p.read_text() for p in write_report([run_dir], tmp_path / "r", ("md", "html")))
    assert "figures/risk_coverage.png" in md and "figures/coverage_under_shift.png" in md
    assert "Knowing when it is wrong" in html and "Risk–coverage curves" in html


def test_plotted_curve_is_the_metric_s_curve():
    """The figure's curve averages tied confidences like the metric: its risk at 80% equals the metric's."""
    from robustbench_local.metrics import METRICS
    from robustbench_local.metrics.calibration import Weighted
    rng = np.random.default_rng(0)
    logits = np.round(rng.normal(size=(50, 3)), 1)  # many ties
    p = Predictions.from_logits(logits, rng.integers(0, 3, 50))
    coverage, risk = risk_coverage(p)
    assert risk[39] == pytest.approx(METRICS["selective_risk_at_80"](Weighted(p, np.ones((1, 50))))[0])
    assert coverage[-1] == 1.0 and risk[-1] == pytest.approx(1 - p.correct.mean())


def test_gate_changes_pair_selective_metrics_per_sample(run_dir, tmp_path):
    """Change rules on a selective and on a conformal metric are judged by the paired bootstrap over the records
    (the conformal sets from the run's stored thresholds), like acc."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"rules": [
        {"metric": "aurc", "suite": "clean", "max_rise": 0.01},
        {"metric": "conformal_coverage_90", "suite": "clean", "max_drop": 0.02}]}))
    result = CliRunner().invoke(cli, ["gate", "--baseline", str(run_dir), "--candidate", str(run_dir),
                                      "--rules", str(rules)])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("PASS")]
    assert any("aurc max rise" in line and "paired bootstrap" in line for line in lines), result.output
    assert any("conformal_coverage_90 max drop" in line and "paired bootstrap" in line for line in lines), result.output

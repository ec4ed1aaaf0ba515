"""The CI gate: seed noise passes, real regressions fail, misuse exits 2; JUnit and Markdown outputs."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import yaml
from click.testing import CliRunner

import robustbench_local as rbl
from robustbench_local.cli import cli
from robustbench_local.gate import Rule, judge


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Trained model under seeds 0..4 (toy noise differs by seed), and an untrained model."""
    with pytest.MonkeyPatch.context() as mp:
        from robustbench_local import suites

        mp.setitem(suites.SUITE_MODULES, "toy", "toy_suite")
        root = tmp_path_factory.mktemp("gate")
        out = {f"seed{s}": rbl.evaluate("builtin:digits-cnn", "builtin:digits", ["clean", "toy"], out=root / f"s{s}",
                                        seed=s, scales="2") for s in range(5)}
        out["untrained"] = rbl.evaluate("builtin:digits-cnn?weights=none", "builtin:digits", ["clean", "toy"],
                                        out=root / "untrained", scales="2")
        out["subset"] = rbl.evaluate("builtin:digits-cnn", "builtin:digits", ["clean"], out=root / "subset", limit=50)
        mp.undo()
        yield out


def gate(*args):
    return CliRunner().invoke(cli, ["gate", *map(str, args)])


@pytest.fixture
def rules(tmp_path):
    path = tmp_path / "gate.yaml"
    path.write_text(yaml.safe_dump({"rules": [
        {"metric": "acc", "max_drop": 0.02},
        {"metric": "ece_15_equal_width", "suite": "clean", "condition": "clean", "max_rise": 0.02},
        {"metric": "acc", "suite": "clean", "min": 0.9}]}))
    return path


def test_seed_noise_rarely_fails_the_gate(runs):
    """Runs that differ only in the seed: every ordered pair of 5 seeds, at most one false alarm in 20."""
    accs = {runs[f"seed{s}"].metric("acc", "toy") for s in range(5)}
    assert len(accs) > 1  # the seeds do change the numbers
    rule = [Rule("acc", max_drop=0.02, suite="toy")]
    alarms = sum(not v.passed for a in range(5) for b in range(5) if a != b
                 for v in judge(runs[f"seed{a}"], runs[f"seed{b}"], rule))
    assert alarms <= 1


def test_real_regression_fails_with_exit_1_and_reports(runs, rules, tmp_path):
    result = gate("--baseline", runs["seed0"].root, "--candidate", runs["untrained"].root, "--rules", rules,
                  "--junit", tmp_path / "gate.xml", "--summary", tmp_path / "gate.md")
    assert result.exit_code == 1, result.output
    assert "FAIL    acc max drop 0.02" in result.output and "paired bootstrap" in result.output
    suite = ET.parse(tmp_path / "gate.xml").getroot()
    assert suite.get("tests") == "4" and int(suite.get("failures")) >= 3
    assert "Robustness gate: FAILED" in (tmp_path / "gate.md").read_text()


def test_identical_runs_pass(runs, rules):
    result = gate("--baseline", runs["seed0"].root, "--candidate", runs["seed0"].root, "--rules", rules)
    assert result.exit_code == 0, result.output
    assert "gate: passed (0 of 4 checks failed)" in result.output


def test_drop_estimate_equals_the_metric_difference(runs):
    (v,) = judge(runs["seed0"], runs["untrained"], [Rule("acc", max_drop=0.01, suite="clean")])
    assert v.change == pytest.approx(runs["seed0"].metric("acc", "clean") - runs["untrained"].metric("acc", "clean"))
    assert not v.passed and v.low > 0


def test_floor_rule_uses_the_interval(runs):
    (ok,) = judge(None, runs["seed0"], [Rule("acc", min=0.995, suite="clean")])
    (bad,) = judge(None, runs["untrained"], [Rule("acc", min=0.5, suite="clean")])
    assert ok.passed and ok.high >= 0.995 > ok.candidate  # below the floor, but not significantly
    assert not bad.passed


def test_baseline_metrics_file_gives_unpaired_checks(runs, rules):
    result = gate("--baseline", runs["seed0"].root / "metrics.csv", "--candidate", runs["untrained"].root,
                  "--rules", rules)
    assert result.exit_code == 1 and "unpaired" in result.output


def test_init_writes_rules_that_pass_on_the_baseline(runs, tmp_path, monkeypatch):
    from robustbench_local import suites

    monkeypatch.setitem(suites.SUITE_MODULES, "toy", "toy_suite")
    path = tmp_path / "starter.yaml"
    assert gate("--init", "--baseline", runs["seed0"].root, "--rules", path).exit_code == 0
    rules = yaml.safe_load(path.read_text())["rules"]
    assert {"metric": "acc", "suite": "clean", "condition": "clean", "max_drop": 0.01} in rules
    assert gate("--baseline", runs["seed0"].root, "--candidate", runs["seed1"].root, "--rules", path).exit_code == 0


@pytest.mark.parametrize("case", ["different_data", "missing_run", "bad_rule", "unknown_metric"])
def test_misuse_exits_2(runs, rules, tmp_path, case):
    candidate = runs["seed0"].root
    if case == "different_data":
        candidate = runs["subset"].root
    elif case == "missing_run":
        candidate = tmp_path / "nope"
    elif case == "bad_rule":
        rules.write_text("rules:\n  - {metric: acc, max_drop: 0.01, min: 0.5}\n")
    else:
        rules.write_text("rules:\n  - {metric: acc_typo, max_drop: 0.01}\n")
    result = gate("--baseline", runs["seed0"].root, "--candidate", candidate, "--rules", rules)
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and result.output.startswith("error: ")


def test_adversarially_trained_baseline_vs_standard_candidate_fails_on_robust_accuracy(tmp_path):
    """The regression case of the issue: robust accuracy of the standard model against the PGD-AT model."""
    options = {"attack": "pgd", "eps": "0.1", "limit": 80}
    baseline = rbl.evaluate("builtin:digits-cnn-at", "builtin:digits", ["clean", "attacks"], out=tmp_path / "at",
                            **options)
    candidate = rbl.evaluate("builtin:digits-cnn", "builtin:digits", ["clean", "attacks"], out=tmp_path / "std",
                             **options)
    rules = tmp_path / "gate.yaml"
    rules.write_text("rules:\n  - {metric: robust_acc, suite: attacks, condition: 'pgd:Linf:0.1', max_drop: 0.01}\n"
                     "  - {metric: acc, suite: clean, max_drop: 0.03}\n")
    result = gate("--baseline", baseline.root, "--candidate", candidate.root, "--rules", rules)
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert any(line.startswith("FAIL") and "robust_acc max drop 0.01" in line for line in lines)
    assert any(line.startswith("PASS") and "acc max drop 0.03" in line for line in lines)

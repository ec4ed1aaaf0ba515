"""The CI gate: seed noise passes, real regressions fail, misuse exits 2; JUnit and Markdown outputs."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import toy_suite
import yaml
from click.testing import CliRunner

import robustbench_local as rbl
from robustbench_local import registry
from robustbench_local.cli import cli
from robustbench_local.errors import SpecError
from robustbench_local.gate import Rule, judge


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Trained model under seeds 0..4 (toy noise differs by seed), and an untrained model."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(registry.SUITES.added, "toy", toy_suite.ENTRY)
        root = tmp_path_factory.mktemp("gate")
        out = {f"seed{s}": rbl.evaluate("builtin:digits-cnn", "builtin:digits", ["clean", "toy"], out=root / f"s{s}",
                                        seed=s, scales="2") for s in range(5)}
        out["untrained"] = rbl.evaluate("builtin:digits-cnn?weights=none", "builtin:digits", ["clean", "toy"],
                                        out=root / "untrained", scales="2")
        out["subset"] = rbl.evaluate("builtin:digits-cnn", "builtin:digits", ["clean"], out=root / "subset", limit=50)
        yield out  # toy stays registered: the gate recomputes its metric rows with the suite's own code


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


def test_change_rules_need_the_baseline_records(runs, rules):
    """No unpaired fallback: a baseline metrics table serves floors only; a change rule asks for the run directory."""
    result = gate("--baseline", runs["seed0"].root / "metrics.csv", "--candidate", runs["untrained"].root,
                  "--rules", rules)
    assert result.exit_code == 2 and "pass the baseline's run directory" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_init_writes_rules_that_pass_on_the_baseline(runs, tmp_path, monkeypatch):
    monkeypatch.setitem(registry.SUITES.added, "toy", toy_suite.ENTRY)
    path = tmp_path / "starter.yaml"
    assert gate("--init", "--baseline", runs["seed0"].root, "--rules", path).exit_code == 0
    rules = yaml.safe_load(path.read_text())["rules"]
    acc = next(r for r in rules if (r["metric"], r["suite"]) == ("acc", "clean"))
    row = runs["seed0"].metrics.query("suite == 'clean' and metric == 'acc'").iloc[0]
    assert acc["max_drop"] == pytest.approx(row.ci_high - row.ci_low, rel=0.1)  # the interval's width
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


VALID = "rules:\n  - {metric: acc, suite: clean, max_drop: 0.5}\n"


@pytest.mark.parametrize("rule, fragments", [
    ("{max_drop: 0.01}", ["`metric` is missing"]),
    ("{metric: acc, max_drop: abc}", ["`max_drop` must be a finite number", "str 'abc'"]),
    ("{metric: [acc], max_drop: 0.01}", ["`metric` must be a metric name", "list ['acc']"]),
    ("{metric: acc, max_drop: .nan}", ["`max_drop` must be a finite number"]),
    ("{metric: acc, min: .inf}", ["`min` must be a finite number"]),
    ("{metric: acc, max_drop: true}", ["`max_drop` must be a finite number", "bool True"]),
    ("{metric: acc, max_rise: -0.1}", ["`max_rise` is the change allowed, a number >= 0"]),
    ("{metric: acc, max_drop: 1e999999}", ["`max_drop` must be a finite number"]),
    ("{metric: acc, max_drop: 123456789012345678901234567890123456789e999}", ["`max_drop`"]),
    ("{metric: acc, suite: 1, max_drop: 0.01}", ["`suite` must be a one-line name", "int 1"]),
    ("{metric: acc, condition: {a: 1}, max_drop: 0.01}", ["`condition` must be a one-line name"]),
    ("{metric: \"acc\\nx\", max_drop: 0.01}", ["`metric` must be a metric name"]),
    ("{metric: acc, max_drop: 0.01, min: 0.5}", ["must set exactly one of"]),
    ("{metric: acc}", ["must set exactly one of", "sets none"]),
    ("{metric: acc, max_dorp: 0.01}", ["unknown key(s) 'max_dorp'"]),
    ("{metric: acc, 3: 0.01}", ["unknown key(s) 3"]),
    ("acc", ["a rule is a mapping", "str 'acc'"]),
])
def test_bad_rule_fields_are_one_line_naming_rule_and_field(runs, tmp_path, rule, fragments):
    """The second rule is bad: the error names it (number and line) and the field, exit 2, no traceback."""
    rules = tmp_path / "gate.yaml"
    rules.write_text(VALID + f"  - {rule}\n")
    result = gate("--baseline", runs["seed0"].root, "--candidate", runs["untrained"].root, "--rules", rules)
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and result.output.startswith("error: ")
    for fragment in [f"rules file {rules}, rule 2 (line 3): ", *fragments]:
        assert fragment in result.output


@pytest.mark.parametrize("content, fragment", [
    (b"rules: [\n", "is not valid YAML"),
    (b"rules:\n  - {metric: acc, max_drop: !!int _}\n", "is not valid YAML"),
    (b"rules:\n  - {metric: acc, max_drop: !!float x}\n", "is not valid YAML"),
    (b"rules:\n  - {metric: \xff\xfe, max_drop: 0.1}\n", "is not UTF-8 text"),
    (b"[" * 5000 + b"]" * 5000, "is not valid YAML"),
    (b"rules: {metric: acc, max_drop: 0.1}\n", "must hold a non-empty list under `rules:`"),
    (b"- {metric: acc, max_drop: 0.1}\n", "must hold a non-empty list under `rules:`"),
    (b"", "must hold a non-empty list under `rules:`"),
])
def test_bad_rules_files_are_one_line(runs, tmp_path, content, fragment):
    rules = tmp_path / "gate.yaml"
    rules.write_bytes(content)
    result = gate("--candidate", runs["seed0"].root, "--rules", rules)
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and fragment in result.output


def test_rules_are_checked_by_type_in_python_too():
    with pytest.raises(SpecError, match="`max_drop` must be a finite number"):
        Rule("acc", max_drop=float("nan"))
    assert Rule("acc", max_drop=1).threshold == 1.0


@pytest.mark.parametrize("option, what", [("--junit", "JUnit XML"), ("--summary", "Markdown summary"),
                                          ("--init", "rules file")])
def test_output_under_a_regular_file_is_one_line(runs, rules, tmp_path, monkeypatch, option, what):
    monkeypatch.setitem(registry.SUITES.added, "toy", toy_suite.ENTRY)
    blocker = tmp_path / "somefile.txt"
    blocker.write_text("x")
    target = blocker / "out" / "x.xml"
    if option == "--init":
        result = gate("--init", "--baseline", runs["seed0"].root, "--rules", target)
    else:
        result = gate("--baseline", runs["seed0"].root, "--candidate", runs["seed0"].root, "--rules", rules,
                      option, target)
    assert result.exit_code == 2, result.output
    assert result.output.splitlines()[-1] == (f"error: cannot write the {what} {target} ({blocker} is a file, not a "
                                              "directory); choose a path in a writable directory")


@pytest.mark.parametrize("name, content", [
    ("metrics.csv", b"a,b\n1,2\n"),
    ("metrics.csv", b"suite,condition,metric,value,ci_low,ci_high\nclean,clean,acc,high,0,1\n"),
    ("metrics.csv", b"\xff\xfe\x00"),
    ("metrics.csv", b""),
    ("metrics.json", b"{not json"),
    ("metrics.json", b"[1, 2]"),
])
def test_baseline_file_that_is_no_metrics_table_is_one_line(runs, rules, tmp_path, name, content):
    baseline = tmp_path / name
    baseline.write_bytes(content)
    result = gate("--baseline", baseline, "--candidate", runs["seed0"].root, "--rules", rules)
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and "is not a metrics table" in result.output

"""`rbl gate --init`: allowances from the baseline's intervals, in each metric's direction; no repeated numbers."""
from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

import robustbench_local as rbl
from robustbench_local.cli import cli
from robustbench_local.gate import WORSE, judge, load_rules
from robustbench_local.gate_init import allowance, propose_rules
from robustbench_local.metrics.contract import metric_spec


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    return rbl.evaluate("builtin:digits-cnn", "builtin:digits", ["clean", "attacks"],
                        out=tmp_path_factory.mktemp("init") / "base", limit=120, attack="pgd", eps="0,0.1", steps="2")


def init(*args):
    return CliRunner().invoke(cli, ["gate", "--init", *map(str, args)])


def test_allowance_is_the_interval_width_rounded_up():
    assert allowance(0.016667) == 0.017 and allowance(0.05) == 0.05 and allowance(0.1104) == 0.12
    assert allowance(1.234) == 1.3


def test_each_allowance_is_its_metrics_interval_width_in_its_direction(baseline):
    m = baseline.metrics.set_index(["suite", "condition", "metric"])
    rules = propose_rules(baseline)
    assert rules
    for rule in rules:
        kind = WORSE[metric_spec(rule["metric"]).higher_is_better]
        row = m.loc[(rule["suite"], rule["condition"], rule["metric"])]
        assert set(rule) == {"metric", "suite", "condition", kind}
        width = row.ci_high - row.ci_low
        assert width - 1e-12 <= rule[kind] <= width * 1.1 + 1e-12  # the width, rounded up to two digits
    kinds = {r["metric"]: next(k for k in r if k.startswith("max")) for r in rules}
    assert kinds["acc"] == "max_drop" and kinds["nll"] == "max_rise" and kinds["robust_acc"] == "max_drop"
    assert len({r[kinds[r["metric"]]] for r in rules}) > 3  # not one allowance for every metric


def test_no_rule_repeats_another_number(baseline):
    rules = propose_rules(baseline)
    assert not [r for r in rules if r["condition"].endswith(":0")]  # eps 0 repeats the clean task
    assert any(r["condition"].endswith(":0.1") for r in rules)
    keys = [(r["suite"], r["condition"], r["metric"]) for r in rules]
    assert len(keys) == len(set(keys))


def test_a_scaled_variant_equal_to_its_raw_metric_gets_no_rule(baseline, monkeypatch):
    """As at temperature 1: the _ts values repeat the raw ones."""
    metrics = baseline.metrics.copy()
    for suffix in ("nll", "ece_15_equal_width"):
        raw = metrics.metric == suffix
        scaled = metrics.metric == f"{suffix}_ts"
        metrics.loc[scaled, ["value", "ci_low", "ci_high"]] = metrics.loc[raw, ["value", "ci_low", "ci_high"]].values
    monkeypatch.setitem(baseline.__dict__, "metrics", metrics)
    names = [(r["suite"], r["metric"]) for r in propose_rules(baseline)]
    assert ("clean", "nll") in names and ("clean", "nll_ts") not in names
    assert ("clean", "ece_15_equal_width_ts") not in names


def test_init_file_passes_its_own_baseline_and_refuses_to_overwrite(baseline, tmp_path):
    path = tmp_path / "gate.yaml"
    result = init("--baseline", baseline.root, "--rules", path)
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(path.read_text())["rules"] == propose_rules(baseline)
    assert all(v.passed for v in judge(baseline, baseline, load_rules(path)))
    path.write_text("rules: [{metric: acc, max_drop: 0.5}]\n")
    refused = init("--baseline", baseline.root, "--rules", path)
    assert refused.exit_code == 2 and refused.output == (f"error: rules file {path} exists; pass --force to "
                                                          "overwrite it, or choose another path\n")
    assert "0.5" in path.read_text()
    assert init("--baseline", baseline.root, "--rules", path, "--force").exit_code == 0
    assert "Proposed by `rbl gate --init`" in path.read_text()

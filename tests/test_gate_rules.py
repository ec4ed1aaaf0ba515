"""Property: any file given as gate rules yields sound rules or one typed, one-line error, never another exception."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robustbench_local.errors import RBLError
from robustbench_local.gate import THRESHOLDS, Rule, load_rules

SETTINGS = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
FIELDS = ("metric", "suite", "condition", *THRESHOLDS)

scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=10**300) | st.floats()
           | st.text(max_size=12) | st.sampled_from(["acc", "clean", "pgd:Linf:8/255", "a\nb", " ", ""]) | st.dates())
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)
numbers = st.integers(-5, 5) | st.floats() | st.integers(min_value=10**308)
names = st.sampled_from(["acc", "robust_acc", "clean", "near:energy"]) | st.text(max_size=8)
rule_like = st.fixed_dictionaries({"metric": names | values},
                                  optional={**dict.fromkeys(THRESHOLDS, numbers | values), "suite": names | values,
                                            "condition": names | values, "extra": values})
rule_entries = rule_like | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6) | st.integers(), values,
                                           max_size=4) | values
documents = st.fixed_dictionaries({"rules": st.lists(rule_entries, max_size=4) | values}) | values

TOKENS = ["rules:", "\n", "  - ", "- ", "{", "}", "[", "]", ": ", ", ", "metric", "acc", "max_drop", "min", "suite",
          ".nan", ".inf", "-1", "0.01", "1e999", "!!int ", "!!float ", "!!binary ", "!!timestamp ", "!!set ", "!!str ",
          "!!python/object:os.system ", "&a ", "*a", "<<: ", "? ", "'", '"', "#", "|", ">", "~", "null", "true",
          "\t", "%YAML 1.1\n", "---\n", "...\n", "\\", "\x00", "\ufeff", "_", "x"]
fragments = st.lists(st.sampled_from(TOKENS), max_size=30).map("".join)


def _check(path: Path) -> None:
    """load_rules gives sound rules or a one-line RBLError; anything else fails the test."""
    try:
        rules = load_rules(path)
    except RBLError as exc:
        message = str(exc)
        assert message and "\n" not in message and "\r" not in message, message
        return
    assert rules
    for rule in rules:
        assert isinstance(rule, Rule) and isinstance(rule.metric, str) and rule.metric.strip()
        assert all(v is None or isinstance(v, str) for v in (rule.suite, rule.condition))
        assert sum(getattr(rule, t) is not None for t in THRESHOLDS) == 1
        assert math.isfinite(rule.threshold) and (rule.kind in ("min", "max") or rule.threshold >= 0)
        str(rule)


@pytest.fixture(scope="module")
def rules_path(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("rules") / "gate.yaml"


@SETTINGS
@given(document=documents, unicode=st.booleans())
def test_any_yaml_document_gives_rules_or_one_line_error(rules_path, document, unicode):
    rules_path.write_text(yaml.safe_dump(document, allow_unicode=unicode), encoding="utf-8")
    _check(rules_path)


@SETTINGS
@given(text=fragments | st.text(max_size=60))
def test_any_text_gives_rules_or_one_line_error(rules_path, text):
    rules_path.write_bytes(text.encode("utf-8", "surrogatepass"))
    _check(rules_path)


@SETTINGS
@given(data=st.binary(max_size=60))
def test_any_bytes_give_rules_or_one_line_error(rules_path, data):
    rules_path.write_bytes(data)
    _check(rules_path)


@SETTINGS
@given(entry=rule_like)
def test_a_sound_rule_round_trips(rules_path, entry):
    """A rule that loads holds exactly the values written; one that does not is refused in one line."""
    rules_path.write_text(yaml.safe_dump({"rules": [entry]}), encoding="utf-8")
    try:
        (rule,) = load_rules(rules_path)
    except RBLError as exc:
        assert "\n" not in str(exc) and "rule 1 (line 2)" in str(exc)
        return
    assert {f: getattr(rule, f) for f in entry if f in FIELDS} == {f: v for f, v in entry.items() if f in FIELDS}

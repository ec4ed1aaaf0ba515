"""Config files, EvalSpec fields and suite options: a value of the wrong kind fails in one line naming it."""
from __future__ import annotations

import io

import pytest
import torch
from foundation_helpers import assert_one_line_error, run_rbl

import robustbench_local as rbl
from robustbench_local.errors import SpecError
from robustbench_local.runner import EvalSpec, plan

MODEL, DATA = "model: builtin:digits-cnn\n", "data: builtin:digits\n"


class Payload:
    """Unpickling creates `marker` (the code a malicious checkpoint would run)."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def config(tmp_path, text: str | bytes, name: str = "eval.yaml"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def evaluate_config(tmp_path, text: str | bytes, *extra: str):
    return run_rbl("evaluate", "--config", str(config(tmp_path, text)), "--out", str(tmp_path / "run"), *extra)


def test_quoted_no_does_not_trust_a_malicious_checkpoint(tmp_path):
    marker, weights = tmp_path / "pwned", tmp_path / "evil.pt"
    buffer = io.BytesIO()
    torch.save({"state_dict": Payload(marker)}, buffer)
    weights.write_bytes(buffer.getvalue())
    outcome = evaluate_config(tmp_path, f"model: {weights}\narch: builtin:digits-cnn\n{DATA}trust_checkpoint: \"no\"\n")
    assert_one_line_error(outcome, "trust_checkpoint must be true or false", "'no'")
    assert not marker.exists()


@pytest.mark.parametrize("field, value", [("trust_checkpoint", "yes"), ("batch_size", 0), ("limit", "40"),
                                          ("seed", "abc"), ("suites", "clean"), ("limit", True), ("options", [1])])
def test_evalspec_checks_its_fields_from_python(field, value):
    with pytest.raises(SpecError, match=f"^{field} must be"):
        EvalSpec("builtin:digits-cnn", "builtin:digits", **{field: value})


def test_python_api_refuses_a_string_for_trust(tmp_path):
    with pytest.raises(SpecError, match="trust_checkpoint must be true or false"):
        rbl.evaluate("builtin:digits-cnn", "builtin:digits", out=tmp_path, limit=8, trust_checkpoint="no")


@pytest.mark.parametrize("text, needles", [
    (MODEL + DATA + "batch_size: 0\n", ["batch_size must be an integer >= 1", "got 0"]),
    (MODEL + DATA + "batch_size: -3\n", ["batch_size must be an integer >= 1", "got -3"]),
    (MODEL + DATA + "limit: \"40\"\n", ["limit must be an integer >= 1 or null", "got '40'"]),
    (MODEL + DATA + "options: [1, 2]\n", ["options must be a mapping", "got [1, 2]"]),
    (MODEL + DATA + "suites: 5\n", ["suites must be a non-empty list of text", "got 5"]),
    (MODEL + DATA + "suites: []\n", ["suites must be a non-empty list", "got []"]),
    ("model: 5\n" + DATA, ["model must be text", "got 5"]),
    (MODEL + DATA + "seed: abc\n", ["seed must be an integer", "got 'abc'"]),
    (MODEL + DATA + "seed: 1.5\n", ["seed must be an integer", "got 1.5"]),
    (MODEL + DATA + "calibration_data: [a]\n", ["calibration_data must be text or null"]),
    (MODEL + DATA + "options: {eps: 2}\nsuites: attacks\n", ["outside [0, 1] for Linf"]),
    (MODEL + DATA + "options: {steps: 0}\nsuites: attacks\n", ["options: steps:", "integer >= 1"]),
    (MODEL + DATA + "options: {eps: {a: 1}}\nsuites: attacks\n", ["options: eps:", "a list of them"]),
    (MODEL + DATA + "options: {eps: [0.1, true]}\nsuites: attacks\n", ["options: eps:"]),
    (MODEL + DATA + "options: {ood_limit: x}\nsuites: ood\n", ["options: ood_limit:", "got 'x'"]),
    (MODEL + DATA + "options: {eps: 0.1}\n", ["eps belong to no selected suite", "--suite"]),
    (MODEL + DATA + "suites: [clean, nope]\n", ["unknown suite 'nope'"]),
    (MODEL + DATA + "1: x\n", ["unknown key(s) 1"]),
    (MODEL + DATA + "options: {eps: [0.1\n", ["not valid YAML", "line 4, column 1"]),
    (MODEL + "data: [builtin:digits\n  limit: 3\n", ["not valid YAML", "line 3"]),
    (MODEL + "data: a: b\n", ["not valid YAML", "line 2, column 8", "mapping values are not allowed"]),
], ids=lambda v: v.strip().splitlines()[-1] if isinstance(v, str) else "")
def test_bad_config_values_are_one_line_errors(tmp_path, text, needles):
    line = assert_one_line_error(evaluate_config(tmp_path, text), *needles)
    assert "eval.yaml" in line


def test_non_utf8_config_names_the_line(tmp_path):
    text = (MODEL + DATA + "# caf\xe9\n").encode("latin-1")
    assert_one_line_error(evaluate_config(tmp_path, text), "not UTF-8", "byte 0xe9 on line 3", "save it as UTF-8")


def test_yaml_lists_and_numbers_are_read_as_the_flags_text(tmp_path):
    spec = EvalSpec.from_yaml(config(tmp_path, MODEL + DATA + "suites: attacks\n"
                                     "options: {eps: [0.1, 2/255], steps: 2, attack: [fgsm, pgd], norm: Linf}\n"))
    names = [task.condition.name for task in plan(spec)]
    assert names == [f"{a} steps=2:Linf:{e}" for a in ("fgsm", "pgd") for e in ("2/255", "0.1")]


def test_linf_radii_above_one_are_refused_l2_radii_are_not():
    linf = EvalSpec("builtin:digits-cnn", "builtin:digits", ["attacks"], options={"eps": "2"})
    with pytest.raises(SpecError, match=r"eps 2 is outside \[0, 1\] for Linf"):
        plan(linf)
    l2 = EvalSpec("builtin:digits-cnn", "builtin:digits", ["attacks"], options={"eps": "2", "norm": "L2"})
    assert [task.condition.params["eps"] for task in plan(l2)] == [2.0]


@pytest.mark.parametrize("flags, needles", [
    (["--suite", "attacks", "--eps", "2"], ["eps 2 is outside [0, 1] for Linf", "--eps", "8/255"]),
    (["--suite", "attacks", "--eps", ","], ["--eps: empty list"]),
    (["--suite", "attacks", "--eps", "1e9999999"], ["--eps:", "finite"]),
    (["--suite", "attacks", "--steps", "0"], ["--steps: expected an integer >= 1"]),
    (["--suite", "attacks", "--restarts", "x"], ["--restarts: expected an integer >= 1, got 'x'"]),
    (["--suite", "ood", "--ood-limit", "-1"], ["--ood-limit: expected an integer >= 1"]),
    (["--suite", "corruptions", "--corruption-workers", "²"], ["--corruption-workers: expected an integer >= 0"]),
    (["--suite", "corruptions", "--severities", ","], ["--severities: empty severity list"]),
], ids=" ".join)
def test_bad_suite_flags_name_the_flag(tmp_path, flags, needles):
    outcome = run_rbl("evaluate", "builtin:digits-cnn", "--data", "builtin:digits", "--limit", "4",
                      "--out", str(tmp_path / "run"), *flags)
    assert_one_line_error(outcome, *needles)


@pytest.mark.parametrize("flags, needles", [
    (["--method", "pgd-at", "--eps", "2"], ["eps 2 is outside [0, 1] for Linf"]),
    (["--epochs", "0"], ["Invalid value for '--epochs'"]),
])
def test_bad_train_flags_are_refused(tmp_path, flags, needles):
    outcome = run_rbl("train", "builtin:digits-cnn?weights=none", "--data", "builtin:digits", "--limit", "8",
                      "--out", str(tmp_path / "run"), *flags)
    assert_one_line_error(outcome, *needles)

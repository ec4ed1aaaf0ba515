"""Config files, EvalSpec fields and suite options: a value of the wrong kind fails in one line naming it."""
from __future__ import annotations

import io

import pytest
import torch
from foundation_helpers import assert_one_line_error, run_rbl

import robustbench_local as rbl
from robustbench_local.errors import SpecError
from robustbench_local.runner import EvalSpec

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

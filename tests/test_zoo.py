"""The built-in zoo: shipped accuracy, and the documented `rbl train` command regenerates the weights."""
from __future__ import annotations

import shlex

import numpy as np
import torch
from click.testing import CliRunner

from robustbench_local import load_data, load_model
from robustbench_local.cli import cli
from robustbench_local.models import BUILTIN_MODELS
from robustbench_local.training import same_weights


def test_shipped_digits_cnn_is_accurate(digits_model, digits_test):
    logits = digits_model.predict(digits_test.images)
    assert (logits.argmax(1) == digits_test.labels).mean() >= 0.95
    assert BUILTIN_MODELS["digits-cnn"].weights.stat().st_size < 5 * 2**20


def test_documented_command_regenerates_the_weights(tmp_path):
    entry = BUILTIN_MODELS["digits-cnn"]
    argv = shlex.split(entry.card["command"])
    assert argv[:2] == ["rbl", "train"]
    argv[argv.index("--out") + 1] = str(tmp_path)
    result = CliRunner().invoke(cli, ["--quiet", *argv[1:]])
    assert result.exit_code == 0, result.output
    same_setup = entry.card["torch"] == torch.__version__ and entry.card["threads"] == torch.get_num_threads()
    if same_setup:  # bit-identical where the float reduction order is the same
        assert same_weights(tmp_path / "best.safetensors", entry.weights)
    model = load_model(str(tmp_path / "best.safetensors"), arch="builtin:digits-cnn")
    test = load_data("builtin:digits", "test")
    assert (model.predict(test.images).argmax(1) == test.labels).mean() >= 0.95
    log = np.genfromtxt(tmp_path / "log.csv", delimiter=",", names=True)
    assert len(log) == entry.card["config"]["epochs"]

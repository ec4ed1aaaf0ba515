"""Usage errors point at the right help and command; a directory where a model file belongs is named as one."""
from __future__ import annotations

import pytest
from foundation_helpers import assert_one_line_error, run_rbl


@pytest.mark.parametrize("args, needles", [
    (["add"], ["no such command 'add'", "did you mean `rbl leaderboard add`?", "(see `rbl --help`)"]),
    (["evalute"], ["no such command 'evalute'", "did you mean `rbl evaluate`?", "(see `rbl --help`)"]),
    (["leaderboard", "ad"], ["did you mean `rbl leaderboard add`?", "(see `rbl leaderboard --help`)"]),
    (["leaderboard", "add"], ["Missing argument", "(see `rbl leaderboard add --help`)"]),
    (["evaluate", "--bogus"], ["No such option '--bogus'", "(see `rbl evaluate --help`)"]),
], ids=" ".join)
def test_usage_errors_point_at_existing_help(args, needles):
    line = assert_one_line_error(run_rbl(*args), *needles)
    assert "`rbl add --help`" not in line


def test_unknown_command_far_from_any_name_gets_no_guess():
    assert_one_line_error(run_rbl("zzzzzz"), "no such command 'zzzzzz' (see `rbl --help`)")


@pytest.mark.parametrize("model, extra, needles", [
    ("{dir}/weights.pt", ["--arch", "builtin:digits-cnn"], ["weights.pt is a directory", "pass a weights file inside it"]),
    ("export:{dir}/model.pt2", [], ["exported program", "model.pt2 is a directory", "torch.export.save"]),
    ("torchscript:{dir}/model.ts", [], ["TorchScript file", "model.ts is a directory", "torch.jit.save"]),
    ("builtin:digits-cnn?weights={dir}/weights.pt", [], ["checkpoint", "weights.pt is a directory",
                                                         "weights file (.safetensors or .pt) inside it"]),
    ("{dir}/run", [], ["run is a directory", "--arch", "best.safetensors"]),
], ids=["bare weights", "export", "torchscript", "?weights=", "run dir"])
def test_a_directory_given_as_a_model_file_is_named_as_one(tmp_path, model, extra, needles):
    for name in ("weights.pt", "model.pt2", "model.ts", "run"):
        (tmp_path / name).mkdir()
    outcome = run_rbl("evaluate", model.format(dir=tmp_path), "--data", "builtin:digits", "--limit", "4",
                      "--out", str(tmp_path / "out"), *extra)
    line = assert_one_line_error(outcome, *needles)
    assert "does not exist" not in line


@pytest.mark.parametrize("command", [
    ["evaluate", "builtin:digits-cnn", "--data", "builtin:digits"],
    ["compare", "builtin:digits-cnn", "builtin:digits-cnn?prune=0.5", "--data", "builtin:digits"],
    ["compress", "builtin:digits-cnn", "--method", "int8-dynamic"],
    ["corrupt", "builtin:digits", "--corruption", "fog", "--severity", "1"],
    ["train", "builtin:digits-cnn?weights=none", "--data", "builtin:digits"],
    ["report", "runs/none"],
    ["demo"],
    ["ci"],
], ids=lambda c: c[0])
def test_an_empty_output_directory_is_refused(command, tmp_path, monkeypatch):
    """`--out ""` (an unset shell variable) would write into the current directory."""
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(run_rbl(*command, "--out", ""), "Invalid value for '--out': is empty; give a directory",
                          f"(see `rbl {command[0]} --help`)")
    assert not any(tmp_path.iterdir())

"""Adversarial training: methods raise robustness, a killed run resumes to identical weights, bad arguments."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import torch
import torchattacks
from click.testing import CliRunner
from robustbench_local.attacks.training_methods import PGDAT, TRADES, FastAT, make_method, robust_accuracy

from robustbench_local import load_data, load_model
from robustbench_local.cli import cli
from robustbench_local.errors import SpecError
from robustbench_local.models import to_tensor
from robustbench_local.progress import Progress
from robustbench_local.training import TrainConfig, accuracy, same_weights, train

TINY = ["--data", "builtin:digits", "--limit", "192", "--epochs", "3", "--batch-size", "64", "--seed", "3"]


def rbl_command(*args: str) -> list[str]:
    return [sys.executable, "-c", "from robustbench_local.cli import main; main()", *args]


def pgd20(model, data, eps=0.1) -> float:
    torch.manual_seed(0)
    x, y = to_tensor(data.images), torch.from_numpy(data.labels)
    adv = torchattacks.PGD(model, eps=eps, alpha=eps / 8, steps=20, random_start=True)(x, y)
    with torch.no_grad():
        return float((model(adv).argmax(1) == y).float().mean())


def test_shipped_pgd_at_model_is_robust(digits_test):
    digits_test = digits_test.limit(150)
    standard, robust = load_model("builtin:digits-cnn"), load_model("builtin:digits-cnn-at")
    clean = [float((m.predict(digits_test.images).argmax(1) == digits_test.labels).mean()) for m in (standard, robust)]
    assert clean[0] - clean[1] <= 0.03
    assert pgd20(robust, digits_test) - pgd20(standard, digits_test) >= 0.15


@pytest.mark.parametrize("method", ["trades", "fast-at"])
def test_fine_tuning_raises_robust_accuracy(tmp_path, method):
    val = load_data("builtin:digits", "val", limit=120)
    x, y = to_tensor(val.images), torch.from_numpy(val.labels)
    before = robust_accuracy(load_model("builtin:digits-cnn"), zip(x.split(256), y.split(256)), eps=0.1)
    result = CliRunner().invoke(cli, ["--quiet", "train", "builtin:digits-cnn", "--data", "builtin:digits",
                                      "--method", method, "--eps", "0.1", "--steps", "3", "--epochs", "2",
                                      "--lr", "0.01", "--shift", "2", "--val-steps", "3", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    tuned = load_model(str(tmp_path / "best.safetensors"), arch="builtin:digits-cnn")
    assert robust_accuracy(tuned, zip(x.split(256), y.split(256)), eps=0.1) > before + 0.1
    log = (tmp_path / "log.csv").read_text().splitlines()
    assert log[0] == "epoch,train_loss,lr,val_acc,val_robust_acc,seconds" and len(log) == 3


def test_killed_run_resumes_to_the_same_weights(tmp_path):
    args = ["train", "builtin:digits-cnn?weights=none", "--method", "pgd-at", "--eps", "0.1", "--steps", "2",
            "--val-steps", "2", *TINY]
    env = {**os.environ, "RBL_DEVICE": "cpu"}
    subprocess.run(rbl_command(*args, "--out", str(tmp_path / "full")), check=True, env=env, capture_output=True)
    killed = subprocess.Popen(rbl_command(*args, "--out", str(tmp_path / "resumed")), env=env,
                              stderr=subprocess.PIPE, text=True)
    for line in killed.stderr:  # kill right after the first epoch is checkpointed
        if line.startswith("epoch 1:"):
            killed.send_signal(signal.SIGKILL)
            break
    killed.wait()
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "resumed" / "model.json").exists()
    resumed = subprocess.run(rbl_command(*args, "--out", str(tmp_path / "resumed")), env=env, capture_output=True,
                             text=True)
    assert resumed.returncode == 0 and "resuming" in resumed.stderr
    for name in ("last.safetensors", "best.safetensors"):
        assert same_weights(tmp_path / "full" / name, tmp_path / "resumed" / name)
    assert (tmp_path / "full" / "log.csv").read_text().count("\n") == 4


def test_robust_ties_are_broken_by_clean_accuracy(tmp_path):
    """Robust validation accuracy 0 at every epoch (as early in adversarial training): best.safetensors is the epoch
    with the best clean accuracy, not the first."""
    val = load_data("builtin:digits", "val", limit=120)
    torch.manual_seed(3)
    summary = train(load_model("builtin:digits-cnn?weights=none"), load_data("builtin:digits", "train", limit=192), val,
                    TrainConfig(epochs=3, seed=3, augment_shift=2), tmp_path, progress=Progress(quiet=True),
                    robust_val=lambda model, batches: 0.0)
    clean = [row["val_acc"] for row in summary["epochs"]]
    assert clean[0] < max(clean)
    best = load_model(str(tmp_path / "best.safetensors"), arch="builtin:digits-cnn")
    assert accuracy(best, val) == max(clean)
    assert summary["best_epoch"] == clean.index(max(clean)) + 1


def test_eps_and_shift_default_to_the_data_scale(tmp_path):
    """32 px images: CIFAR-10's 8/255 and 4 px, recorded as explicit flags in the card's command."""
    result = CliRunner().invoke(cli, ["train", "builtin:digits-cnn?weights=none", "--method", "fast-at", "--epochs",
                                      "1", "--val-steps", "1", *TINY[:4], "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "notice: --eps 8/255 for 32 px images" in result.stderr and "notice: --shift 4 px" in result.stderr
    card = json.loads((tmp_path / "model.json").read_text())
    assert "--eps 8/255" in card["command"] and "--shift 4" in card["command"]
    assert card["config"]["augment_shift"] == 4 and card["loss"] == repr(FastAT(8 / 255, 1.25 * 8 / 255))


def test_methods_follow_the_papers_defaults():
    assert make_method("pgd-at", 8 / 255, 10) == PGDAT(8 / 255, 2.5 * (8 / 255) / 10, 10)
    assert make_method("trades", 0.1, 5) == TRADES(0.1, 0.05, 5, 6.0)
    assert make_method("fast-at", 8 / 255, 1) == FastAT(8 / 255, 1.25 * 8 / 255)
    with pytest.raises(SpecError, match="--eps must be positive"):
        make_method("pgd-at", 0.0, 7)


@pytest.mark.parametrize("args, message", [
    (["--method", "pgd-at", "--eps", "0"], "--eps must be positive"),
    (["--method", "pgd-at", "--eps", "-1/255"], "--eps must be a finite number >= 0"),
    (["--method", "pgd-at", "--eps", "2"], "eps 2 is outside [0, 1] for Linf"),
    (["--method", "mixup"], "Invalid value for '--method'"),
    (["--eps", "abc", "--method", "trades"], "--eps takes a number or a fraction"),
    (["--arch", "torchvision:resnet18?num_classes=10"], "do not fit the architecture"),
])
def test_bad_arguments_are_one_line_errors(tmp_path, args, message):
    model = str(tmp_path / "w.safetensors") if "--arch" in args else "builtin:digits-cnn"
    if "--arch" in args:
        import shutil

        from robustbench_local.models import BUILTIN_MODELS

        shutil.copy(BUILTIN_MODELS["digits-cnn"].weights, model)
    result = CliRunner().invoke(cli, ["train", model, "--data", "builtin:digits", "--out", str(tmp_path / "o"),
                                      *args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]

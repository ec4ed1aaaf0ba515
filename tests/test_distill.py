"""Distillation in `rbl train`: the KD loss against the literal formula, ARD's adversary and objective, a frozen
teacher, a distilled student from the command line, resuming, and bad input as one line with exit code 2."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchattacks
from foundation_helpers import assert_one_line_error, run_rbl
from robustbench_local.attacks.training_methods import ARD, Distill, distillation_loss, make_method

from robustbench_local import load_data, load_model
from robustbench_local.errors import RunError
from robustbench_local.models import to_tensor
from robustbench_local.progress import Progress
from robustbench_local.training import TrainConfig, accuracy, same_weights, train


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def kd_oracle(student: np.ndarray, teacher: np.ndarray, y: np.ndarray, temperature: float, kd_alpha: float,
              clean: np.ndarray) -> float:
    """(1-α)·CE(clean, y) + α·T²·mean_i Σ_j p_ij (log p_ij - log q_ij), p = softmax(teacher/T), q = softmax(student/T),
    in float64."""
    p, q = _softmax(teacher / temperature), _softmax(student / temperature)
    kl = float(np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=1)))
    ce = float(np.mean(-np.log(_softmax(clean)[np.arange(len(y)), y])))
    return (1 - kd_alpha) * ce + kd_alpha * temperature**2 * kl


def test_kd_loss_of_a_hand_computed_case():
    """Two classes, T=2, α=0.5: teacher logits (2, 0) and student (0, 0), label 0.
    p = softmax((1, 0)) = (e/(e+1), 1/(e+1)), q = (1/2, 1/2), KL = Σ p log(2p), CE = log 2."""
    e = np.e
    p = np.array([e / (e + 1), 1 / (e + 1)])
    expected = 0.5 * np.log(2) + 0.5 * 4 * float(np.sum(p * np.log(2 * p)))
    got = distillation_loss(torch.zeros(1, 2), torch.tensor([[2.0, 0.0]]), 2.0, 0.5, torch.zeros(1, 2),
                            torch.tensor([0]))
    assert float(got) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("temperature, kd_alpha", [(4.0, 0.9), (30.0, 1.0), (1.0, 0.0), (2.5, 0.3)])
def test_kd_loss_matches_the_literal_formula(temperature, kd_alpha):
    gen = torch.Generator().manual_seed(0)
    student, teacher, clean = (torch.randn(16, 10, generator=gen) * 3 for _ in range(3))
    y = torch.randint(0, 10, (16,), generator=gen)
    got = distillation_loss(student, teacher, temperature, kd_alpha, clean, y)
    want = kd_oracle(student.double().numpy(), teacher.double().numpy(), y.numpy(), temperature, kd_alpha,
                     clean.double().numpy())
    assert float(got) == pytest.approx(want, rel=1e-5)
    # the library's own KL (pointwise p·(log p - log q), summed over classes, averaged over the batch)
    kl = F.kl_div(F.log_softmax(student / temperature, 1), F.softmax(teacher / temperature, 1), reduction="batchmean")
    assert float(got) == pytest.approx((1 - kd_alpha) * float(F.cross_entropy(clean, y))
                                       + kd_alpha * temperature**2 * float(kl), rel=1e-5)


def test_with_all_weight_on_the_teacher_the_labels_do_not_count():
    gen = torch.Generator().manual_seed(1)
    student, teacher = torch.randn(8, 10, generator=gen), torch.randn(8, 10, generator=gen)
    y = torch.randint(0, 10, (8,), generator=gen)
    assert torch.equal(distillation_loss(student, teacher, 30.0, 1.0, student, y),
                       distillation_loss(student, teacher, 30.0, 1.0, student, (y + 1) % 10))


def test_distill_loss_runs_the_teacher_on_the_same_images():
    student, teacher = load_model("builtin:digits-cnn?weights=none", device="cpu"), load_model("builtin:digits-cnn")
    x = to_tensor(load_data("builtin:digits", "val", limit=12).images)
    y = torch.arange(12) % 10
    loss = Distill(teacher)(student, x, y)
    with torch.no_grad():
        s, t = student(x).double().numpy(), teacher(x).double().numpy()
    assert float(loss.detach()) == pytest.approx(kd_oracle(s, t, y.numpy(), 4.0, 0.9, s), rel=1e-5)
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())


@pytest.fixture(scope="module")
def digits_batch():
    val = load_data("builtin:digits", "val", limit=32)
    return to_tensor(val.images), torch.from_numpy(val.labels)


def test_ard_trains_on_pgd_examples_of_the_student_against_the_teacher_on_clean_images(digits_batch):
    """ARD's adversary maximises the student's cross-entropy within the L∞ ball (the paper's code), which also drives
    the student's softened outputs away from the teacher's on the clean image: the KL term grows."""
    x, y = digits_batch
    student, teacher = load_model("builtin:digits-cnn"), load_model("builtin:digits-cnn-at")
    ard = ARD(teacher, eps=0.1, alpha=0.025, steps=5, temperature=30.0, kd_alpha=0.7)
    torch.manual_seed(0)
    loss = ard(student, x, y)
    torch.manual_seed(0)
    adv = torchattacks.PGD(student, eps=0.1, alpha=0.025, steps=5, random_start=True)(x, y)
    assert float((adv - x).abs().max()) <= 0.1 + 1e-6 and not torch.equal(adv, x)
    with torch.no_grad():
        s_adv, s_clean, t = (m(v).double().numpy() for m, v in ((student, adv), (student, x), (teacher, x)))
    assert float(loss.detach()) == pytest.approx(kd_oracle(s_adv, t, y.numpy(), 30.0, 0.7, s_clean), rel=1e-5)
    assert F.cross_entropy(torch.from_numpy(s_adv), y) > F.cross_entropy(torch.from_numpy(s_clean), y)
    assert kd_oracle(s_adv, t, y.numpy(), 30.0, 1.0, s_adv) > kd_oracle(s_clean, t, y.numpy(), 30.0, 1.0, s_clean)


def test_methods_follow_the_papers_defaults():
    teacher = load_model("builtin:digits-cnn")
    kd = make_method("distill", 0.0, 7, teacher=teacher)
    assert kd == Distill(teacher, 4.0, 0.9) and repr(kd) == "Distill(temperature=4.0, kd_alpha=0.9)"
    ard = make_method("ard", 8 / 255, 10, teacher=teacher)
    assert ard == ARD(teacher, 8 / 255, 2.5 * (8 / 255) / 10, 10, 30.0, 1.0)  # step 2/255, as in the paper
    assert make_method("distill", 0.0, 7, teacher=teacher, temperature=2.0, kd_alpha=0.5) == Distill(teacher, 2.0, 0.5)


def test_distilled_student_from_the_command_line(tmp_path):
    outcome = run_rbl("train", "builtin:digits-cnn?weights=none", "--data", "builtin:digits", "--method", "distill",
                      "--teacher", "builtin:digits-cnn", "--epochs", "2", "--limit", "512", "--out", str(tmp_path))
    assert outcome.exit_code == 0, outcome.stderr
    student = load_model(str(tmp_path / "best.safetensors"), arch="builtin:digits-cnn")
    assert accuracy(student, load_data("builtin:digits", "test")) >= 0.5  # 10 classes: chance is 0.1
    card = json.loads((tmp_path / "model.json").read_text())
    teacher = load_model("builtin:digits-cnn")
    assert card["teacher"]["spec"] == "builtin:digits-cnn" and card["teacher"]["fingerprint"] == teacher.fingerprint
    assert (card["config"]["teacher"], card["config"]["temperature"], card["config"]["kd_alpha"]) == (
        "builtin:digits-cnn", 4.0, 0.9)
    assert "--teacher builtin:digits-cnn --temperature 4.0 --kd-alpha 0.9" in card["command"]
    assert "--eps" not in card["command"] and card["selected_by"] == "val_acc"


class StopAfterFirstEpoch(Progress):
    """Ends a run the way a kill does, right after epoch 1 is checkpointed."""

    def note(self, message: str) -> None:
        if message.startswith("epoch 1:"):
            raise KeyboardInterrupt


@pytest.mark.parametrize("method", ["distill", "ard"])
def test_an_interrupted_distillation_resumes_to_the_same_weights(tmp_path, method):
    train_set, val_set = load_data("builtin:digits", "train", limit=96), load_data("builtin:digits", "val", limit=32)
    config = TrainConfig(epochs=2, seed=3, augment_shift=2, method=method, teacher="builtin:digits-cnn-at",
                         temperature=4.0, kd_alpha=0.5)

    def run(out, progress: Progress = Progress(quiet=True), teacher_spec: str = "builtin:digits-cnn-at", **changes):
        teacher = load_model(teacher_spec, device="cpu")
        loss = make_method(method, 0.1, 2, teacher=teacher, temperature=4.0, kd_alpha=0.5)
        student = load_model("builtin:digits-cnn?weights=none", device="cpu", seed=3)
        train(student, train_set, val_set, replace(config, **changes), out, loss, progress=progress)

    run(tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "resumed", StopAfterFirstEpoch(quiet=True))
    with pytest.raises(RunError, match="other settings"):  # another teacher is another run
        run(tmp_path / "resumed", teacher_spec="builtin:digits-cnn", teacher="builtin:digits-cnn")
    run(tmp_path / "resumed")
    for name in ("last.safetensors", "best.safetensors"):
        assert same_weights(tmp_path / "full" / name, tmp_path / "resumed" / name)


def test_the_teacher_stays_frozen_through_training(tmp_path):
    teacher = load_model("builtin:digits-cnn", device="cpu")
    before = teacher.fingerprint
    loss = make_method("distill", 0.0, 7, teacher=teacher)
    train(load_model("builtin:digits-cnn?weights=none", device="cpu"), load_data("builtin:digits", "train", limit=64),
          load_data("builtin:digits", "val", limit=16), TrainConfig(epochs=1, augment_shift=2), tmp_path, loss,
          progress=Progress(quiet=True))
    assert teacher.fingerprint == before and not teacher.training  # weights and batch-norm statistics untouched


@pytest.mark.parametrize("args, needles", [
    (["--method", "distill"], ["--method distill distils a teacher", "--teacher SPEC"]),
    (["--method", "ard"], ["--method ard", "--teacher SPEC"]),
    (["--teacher", "builtin:digits-cnn"], ["--teacher applies to --method distill or ard only", "standard"]),
    (["--method", "pgd-at", "--kd-alpha", "0.5"], ["--kd-alpha applies to --method distill or ard only"]),
    (["--method", "distill", "--teacher", "builtin:digits-cnn", "--temperature", "0"], ["--temperature", "> 0"]),
    (["--method", "distill", "--teacher", "builtin:digits-cnn", "--temperature", "nan"], ["--temperature", "finite"]),
    (["--method", "distill", "--teacher", "builtin:digits-cnn", "--kd-alpha", "1.5"], ["--kd-alpha", "[0, 1]"]),
    (["--teacher-arch", "builtin:digits-cnn"], ["--teacher-arch", "pass --teacher too"]),
    (["--method", "distill", "--teacher", "builtin:digits-cnn?num_classes=5&weights=none"],
     ["has 5 classes and the student 10"]),
    (["--method", "ard", "--teacher", "builtin:no-such-model"], ["unknown built-in model", "no-such-model"]),
], ids=" ".join)
def test_bad_distillation_input_is_one_line_with_exit_code_2(tmp_path, args, needles):
    outcome = run_rbl("train", "builtin:digits-cnn", "--data", "builtin:digits", *args, "--out", str(tmp_path / "o"))
    assert_one_line_error(outcome, *needles)
    assert not (tmp_path / "o").exists()

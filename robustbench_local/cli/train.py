"""`rbl train`: standard, adversarial or distillation training that writes weights `rbl evaluate` can load."""
from __future__ import annotations

import functools
import shlex
from pathlib import Path

import click

from ..errors import SpecError
from ..parsing import parse_fraction
from ..train_config import (
    ADVERSARIAL,
    DEFAULT_SCHEDULE,
    DEFAULT_STEPS,
    DISTILLATION,
    METHODS,
    SCHEDULES,
    TrainConfig,
    distillation_settings,
)
from .app import OutputDir, cli
from .evaluate import data_workers_option


@cli.command("train")
@click.argument("model")
@click.option("--data", required=True, help="Data spec with train and val splits, e.g. builtin:digits.")
@click.option("--out", type=OutputDir(), required=True, help="Output directory (resumable).")
@click.option("--method", type=click.Choice(METHODS), default="standard", show_default=True,
              help="standard, PGD-AT (Madry), TRADES (Zhang), Fast-AT (Wong), distill: knowledge distillation "
              "from --teacher (Hinton), ard: adversarially robust distillation from --teacher (Goldblum).")
@click.option("--eps", help="L∞ radius in [0,1] pixels (fractions like 8/255 ok); default 8/255 for images up to "
              "64 px (CIFAR-10's convention), 4/255 above (ImageNet's).")
@click.option("--steps", type=click.IntRange(min=1), help="Attack steps (PGD-AT, TRADES, ARD); default 7, 10 for ARD.")
@click.option("--alpha", help="Attack step size (default 2.5·eps/steps; 1.25·eps for Fast-AT).")
@click.option("--beta", type=float, default=6.0, show_default=True, help="TRADES trade-off β.")
@click.option("--teacher", help="distill, ard: the teacher's model spec (any loadable model, loaded as safely as MODEL), "
              "e.g. builtin:digits-cnn-at; frozen, in eval mode.")
@click.option("--teacher-arch", help="Architecture spec when --teacher is a bare weights file.")
@click.option("--temperature", type=float, help="distill, ard: softmax temperature T of the KL term (default 4 for "
              "distill, 30 for ard).")
@click.option("--kd-alpha", type=float, help="distill, ard: weight α of the KL term, in [0, 1]; cross-entropy with "
              "the labels gets 1-α (default 0.9 for distill, 1 for ard).")
@click.option("--epochs", type=click.IntRange(min=1), default=TrainConfig.epochs, show_default=True)
@click.option("--lr", type=float, default=TrainConfig.lr, show_default=True, help="Peak learning rate.")
@click.option("--schedule", type=click.Choice(SCHEDULES), help="LR schedule per step (default: onecycle for "
              "standard, piecewise for PGD-AT/TRADES, cyclic for Fast-AT).")
@click.option("--batch-size", type=click.IntRange(min=1), default=TrainConfig.batch_size, show_default=True)
@click.option("--shift", type=click.IntRange(min=0), help="Random translation of up to N pixels each way (edge-padded); "
              "default 1/8 of the image side: 4 px at 32 px, as CIFAR-10's pad-4-and-crop.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds initialisation, order and attacks.")
@click.option("--limit", type=click.IntRange(min=1), help="Train on a deterministic subset of N training images.")
@click.option("--val-steps", type=click.IntRange(min=1), default=10, show_default=True,
              help="PGD steps of the robust validation.")
@click.option("--arch", help="Architecture spec when MODEL is a bare weights file (fine-tuning).")
@click.option("--trust-checkpoint", is_flag=True, help="Allow pickled checkpoints (only files you trust).")
@data_workers_option
@click.pass_context
def train_cmd(ctx: click.Context, model, data, out, method, eps, steps, alpha, beta, teacher, teacher_arch,
              temperature, kd_alpha, epochs, lr, schedule, batch_size, shift, seed, limit, val_steps, arch,
              trust_checkpoint, data_workers) -> None:
    """Train MODEL (from scratch with ?weights=none, or fine-tune any loadable checkpoint) on --data.

    Each epoch logs train loss, clean and PGD robust validation accuracy to OUT/log.csv; keeps
    best.safetensors (by robust val accuracy for adversarial methods, ties broken by clean accuracy) and
    last.safetensors; a killed run resumes from OUT/checkpoint.pt. Evaluate with
    `rbl evaluate OUT/best.safetensors --arch MODEL ...`. --eps and --shift default to the data's scale.

    distill: loss = (1-α)·CE(S(x), y) + α·T²·KL(softmax(teacher(x)/T) ‖ softmax(S(x)/T)). ard: the same KL with
    the student on PGD examples x+δ (δ maximising its cross-entropy, --eps/--steps/--alpha) and the teacher on x.

    \b
    Examples:
      rbl train 'builtin:digits-cnn?weights=none' --data builtin:digits --epochs 15 --out runs/digits-cnn
      rbl train 'builtin:digits-cnn?weights=none' --data builtin:digits --method pgd-at --eps 0.1 --out runs/at
      rbl train builtin:digits-cnn --data builtin:digits --method trades --epochs 5 --lr 0.01 --out runs/ft
      rbl train 'builtin:digits-cnn?weights=none' --data builtin:digits --method distill \\
          --teacher builtin:digits-cnn --epochs 5 --out runs/kd
      rbl train 'builtin:digits-cnn?weights=none' --data builtin:digits --method ard \\
          --teacher builtin:digits-cnn-at --eps 0.1 --epochs 5 --out runs/ard
    """
    from robustbench_local.attacks.threat import check_radius
    from robustbench_local.attacks.training_methods import default_eps, make_method, robust_accuracy

    from ..data import load_data
    from ..models import load_model
    from ..progress import Progress
    from ..training import accuracy, default_shift, load_weights_into, train

    temperature, kd_alpha = distillation_settings(method, teacher, temperature, kd_alpha)
    if teacher_arch and not teacher:
        raise SpecError("--teacher-arch names the architecture of a --teacher weights file; pass --teacher too")
    steps = steps or DEFAULT_STEPS.get(method, 7)
    progress = Progress(ctx.obj["quiet"])
    train_set, val_set = load_data(data, "train", limit), load_data(data, "val")
    side, notices = min(train_set.image_shape[:2]), []
    if method in ADVERSARIAL and eps is None:
        eps = default_eps(side)
        notices.append(f"--eps {eps} for {side} px images (pass --eps to choose)")
    if shift is None:
        shift = default_shift(side)
        notices.append(f"--shift {shift} px for {side} px images (pass --shift to choose)")
    eps_value = check_radius("Linf", parse_fraction(eps, "--eps"), eps) if eps else 0.0
    alpha_value = parse_fraction(alpha, "--alpha") if alpha else None
    config = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, augment_shift=shift, method=method,
                         schedule=schedule or DEFAULT_SCHEDULE[method], teacher=teacher, temperature=temperature,
                         kd_alpha=kd_alpha)
    robust_val = functools.partial(robust_accuracy, eps=eps_value, steps=val_steps) if method in ADVERSARIAL else None
    net = load_model(model, arch, trust_checkpoint, seed=seed)  # the seed covers weight initialisation too
    teacher_model = _load_teacher(teacher, teacher_arch, trust_checkpoint, net) if teacher else None
    loss_fn = make_method(method, eps_value, steps, alpha_value, beta, teacher_model, temperature, kd_alpha)
    for notice in notices:  # once the arguments are known to be good
        progress.note(f"notice: {notice}")
    args = ["rbl", "train", model, "--data", data, "--method", method]
    if method in DISTILLATION:
        args += ["--teacher", teacher, *(["--teacher-arch", teacher_arch] if teacher_arch else []),
                 "--temperature", str(temperature), "--kd-alpha", str(kd_alpha)]
    if method in ADVERSARIAL:
        args += ["--eps", eps, "--steps", str(steps), "--val-steps", str(val_steps)]
    args += ["--epochs", str(epochs), "--lr", str(lr), "--batch-size", str(batch_size), "--shift", str(shift),
             "--seed", str(seed), "--out", str(out)] + (["--arch", arch] if arch else []) \
        + (["--limit", str(limit)] if limit else [])
    card = {"model": model, "data": data, "command": shlex.join(args), "loss": repr(loss_fn)}
    if teacher_model is not None:
        card["teacher"] = {"spec": teacher, "arch": teacher_arch, "fingerprint": teacher_model.fingerprint,
                           "test_acc": accuracy(teacher_model, load_data(data, "test"))}
    summary = train(net, train_set, val_set, config, out, loss_fn, card, progress, robust_val)
    load_weights_into(net, Path(out) / "best.safetensors")
    test_acc = accuracy(net, load_data(data, "test"))
    click.echo(f"best {summary['selected_by']} {summary['best_val_score']:.4f}; its test acc {test_acc:.4f}; "
               f"weights in {Path(out) / 'best.safetensors'}")


def _load_teacher(spec: str, arch: str | None, trust_checkpoint: bool, student):
    """The teacher on the student's device, its class count checked against the student's."""
    from ..models import load_model

    teacher = load_model(spec, arch, trust_checkpoint, device=str(student.device))
    if teacher.num_classes != student.num_classes:
        raise SpecError(f"--teacher {spec} has {teacher.num_classes} classes and the student {student.num_classes}; "
                        "distil a teacher trained on the same classes (or set ?num_classes= on the student)")
    return teacher

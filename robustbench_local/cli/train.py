"""`rbl train`: standard or adversarial training that writes weights `rbl evaluate` can load."""
from __future__ import annotations

import functools
import shlex
from pathlib import Path

import click

from ..parsing import parse_fraction
from ..progress import Progress
from ..train_config import DEFAULT_SCHEDULE, METHODS, SCHEDULES, TrainConfig
from .app import cli
from .evaluate import data_workers_option


@cli.command("train")
@click.argument("model")
@click.option("--data", required=True, help="Data spec with train and val splits, e.g. builtin:digits.")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output directory (resumable).")
@click.option("--method", type=click.Choice(METHODS), default="standard", show_default=True,
              help="standard, PGD-AT (Madry), TRADES (Zhang) or Fast-AT (Wong).")
@click.option("--eps", help="L∞ radius in [0,1] pixels (fractions like 8/255 ok); default 8/255 for images up to "
              "64 px (CIFAR-10's convention), 4/255 above (ImageNet's).")
@click.option("--steps", type=click.IntRange(min=1), default=7, show_default=True, help="Attack steps (PGD-AT, TRADES).")
@click.option("--alpha", help="Attack step size (default 2.5·eps/steps; 1.25·eps for Fast-AT).")
@click.option("--beta", type=float, default=6.0, show_default=True, help="TRADES trade-off β.")
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
def train_cmd(ctx: click.Context, model, data, out, method, eps, steps, alpha, beta, epochs, lr, schedule,
              batch_size, shift, seed, limit, val_steps, arch, trust_checkpoint, data_workers) -> None:
    """Train MODEL (from scratch with ?weights=none, or fine-tune any loadable checkpoint) on --data.

    Each epoch logs train loss, clean and PGD robust validation accuracy to OUT/log.csv; keeps
    best.safetensors (by robust val accuracy for adversarial methods, ties broken by clean accuracy) and
    last.safetensors; a killed run resumes from OUT/checkpoint.pt. Evaluate with
    `rbl evaluate OUT/best.safetensors --arch MODEL ...`. --eps and --shift default to the data's scale.

    \b
    Examples:
      rbl train 'builtin:digits-cnn?weights=none' --data builtin:digits --epochs 15 --out runs/digits-cnn
      rbl train 'builtin:digits-cnn?weights=none' --data builtin:digits --method pgd-at --eps 0.1 --out runs/at
      rbl train builtin:digits-cnn --data builtin:digits --method trades --epochs 5 --lr 0.01 --out runs/ft
    """
    from robustbench_local.attacks.threat import check_radius
    from robustbench_local.attacks.training_methods import default_eps, make_method, robust_accuracy

    from ..data import load_data
    from ..models import load_model
    from ..training import accuracy, default_shift, load_weights_into, train

    progress = Progress(ctx.obj["quiet"])
    train_set, val_set = load_data(data, "train", limit), load_data(data, "val")
    side, notices = min(train_set.image_shape[:2]), []
    if method != "standard" and eps is None:
        eps = default_eps(side)
        notices.append(f"--eps {eps} for {side} px images (pass --eps to choose)")
    if shift is None:
        shift = default_shift(side)
        notices.append(f"--shift {shift} px for {side} px images (pass --shift to choose)")
    eps_value = check_radius("Linf", parse_fraction(eps, "--eps"), eps) if eps else 0.0
    alpha_value = parse_fraction(alpha, "--alpha") if alpha else None
    loss_fn = make_method(method, eps_value, steps, alpha_value, beta)
    config = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, augment_shift=shift, method=method,
                         schedule=schedule or DEFAULT_SCHEDULE[method])
    robust_val = None if method == "standard" else functools.partial(robust_accuracy, eps=eps_value, steps=val_steps)
    net = load_model(model, arch, trust_checkpoint, seed=seed)  # the seed covers weight initialisation too
    for notice in notices:  # once the arguments are known to be good
        progress.note(f"notice: {notice}")
    args = ["rbl", "train", model, "--data", data, "--method", method]
    if method != "standard":
        args += ["--eps", eps, "--steps", str(steps), "--val-steps", str(val_steps)]
    args += ["--epochs", str(epochs), "--lr", str(lr), "--batch-size", str(batch_size), "--shift", str(shift),
             "--seed", str(seed), "--out", str(out)] + (["--arch", arch] if arch else []) \
        + (["--limit", str(limit)] if limit else [])
    card = {"model": model, "data": data, "command": shlex.join(args), "loss": repr(loss_fn)}
    summary = train(net, train_set, val_set, config, out, loss_fn, card, progress, robust_val)
    load_weights_into(net, Path(out) / "best.safetensors")
    test_acc = accuracy(net, load_data(data, "test"))
    click.echo(f"best {summary['selected_by']} {summary['best_val_score']:.4f}; its test acc {test_acc:.4f}; "
               f"weights in {Path(out) / 'best.safetensors'}")

"""`rbl train`: supervised training that writes weights `rbl evaluate` can load."""
from __future__ import annotations

import shlex
from pathlib import Path

import click
import torch

from ..data import load_data
from ..models import load_model
from ..progress import Progress
from ..training import TrainConfig, accuracy, load_weights_into, train
from .app import cli


@cli.command("train")
@click.argument("model")
@click.option("--data", required=True, help="Data spec with train and val splits, e.g. builtin:digits.")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output directory.")
@click.option("--epochs", type=int, default=TrainConfig.epochs, show_default=True)
@click.option("--lr", type=float, default=TrainConfig.lr, show_default=True, help="Peak learning rate (one-cycle).")
@click.option("--batch-size", type=int, default=TrainConfig.batch_size, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--arch", help="Architecture spec when MODEL is a bare weights file (fine-tuning).")
@click.option("--trust-checkpoint", is_flag=True, help="Allow pickled checkpoints (only files you trust).")
@click.pass_context
def train_cmd(ctx: click.Context, model, data, out, epochs, lr, batch_size, seed, arch, trust_checkpoint) -> None:
    """Train MODEL on the train split of --data, selecting on the val split.

    Writes best.safetensors (best val accuracy), last.safetensors, log.csv and model.json to --out;
    evaluate the result with `rbl evaluate OUT/best.safetensors --arch MODEL ...`.

    \b
    Example (regenerates the built-in builtin:digits-cnn weights):
      rbl train 'builtin:digits-cnn?weights=none' --data builtin:digits --epochs 15 --seed 0 --out runs/digits-cnn
    """
    config = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
    torch.manual_seed(seed)  # the seed covers weight initialisation too
    net = load_model(model, arch, trust_checkpoint)
    train_set, val_set = load_data(data, "train"), load_data(data, "val")
    command = shlex.join(["rbl", "train", model, "--data", data, "--epochs", str(epochs), "--lr", str(lr),
                          "--batch-size", str(batch_size), "--seed", str(seed), "--out", str(out)]
                         + (["--arch", arch] if arch else []))
    summary = train(net, train_set, val_set, config, out, card={"model": model, "data": data, "command": command},
                    progress=Progress(ctx.obj["quiet"]))
    load_weights_into(net, Path(out) / "best.safetensors")
    test_acc = accuracy(net, load_data(data, "test"))
    click.echo(f"best val acc {summary['best_val_acc']:.4f}; its test acc {test_acc:.4f}; "
               f"weights in {Path(out) / 'best.safetensors'}")

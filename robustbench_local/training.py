"""Training of a Classifier on a DataSource: seeded, logged per epoch, best and last weights kept, resumable.
Minibatches are read from the source (decoded ahead by the data threads), so the set need not fit in memory.

The objective is a loss function `loss_fn(model, x, y)` (plain cross-entropy here; adversarial objectives
live in `attacks.training_methods`), and `robust_val(model, x, y) -> accuracy` optionally selects the best
epoch by robust validation accuracy (ties broken by clean accuracy). A killed run continues from `checkpoint.pt`
(model, optimiser, scheduler and RNG states) and ends, on CPU with the same seed, with the same weights as an
uninterrupted run.
"""
from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import asdict, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save

from .data import DataSource
from .device import cpu_setup
from .errors import RunError
from .models import Classifier, frozen_mode, to_tensor
from .progress import Progress
from .runner.store import atomic_write, write_json
from .train_config import TrainConfig

LossFn = Callable[[Classifier, torch.Tensor, torch.Tensor], torch.Tensor]
Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]  # (x in [0, 1], y) on the model's device
RobustVal = Callable[[Classifier, Batches], float]
VAL_BATCH = 256
CHECKPOINT = "checkpoint.pt"


def cross_entropy(model: Classifier, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Plain supervised loss."""
    return F.cross_entropy(model(x), y)


def default_shift(side: int) -> int:
    """Random-translation range for images `side` pixels across: 1/8 of the side, so 4 px at 32 px (CIFAR-10's
    pad-4-and-crop convention)."""
    return max(1, round(side / 8))


def selection_key(row: dict) -> tuple[float, ...]:
    """How an epoch's log row ranks for best.safetensors: robust validation accuracy when measured, ties broken by
    clean accuracy (equal keys keep the earlier epoch)."""
    return (row["val_robust_acc"], row["val_acc"]) if "val_robust_acc" in row else (row["val_acc"],)


def random_shift(x: torch.Tensor, shift: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each image by up to `shift` pixels (edge-padded), drawn from `gen`."""
    if shift == 0:
        return x
    padded = F.pad(x, (shift,) * 4, mode="replicate")
    offsets = torch.randint(0, 2 * shift + 1, (len(x), 2), generator=gen)
    h, w = x.shape[-2:]
    return torch.stack([p[:, i:i + h, j:j + w] for p, (i, j) in zip(padded, offsets.tolist(), strict=True)])


def make_schedule(optimiser: torch.optim.Optimizer, name: str, lr: float, total: int):
    """Per-step LR schedule: one-cycle, triangular cyclic (Fast-AT), piecewise ×0.1 at 50%/75% (Madry), cosine."""
    if name == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimiser, lr, total_steps=total, pct_start=0.15)
    factors = {
        "cyclic": lambda t: 1 - abs(2 * t - 1),
        "piecewise": lambda t: 1.0 if t < 0.5 else 0.1 if t < 0.75 else 0.01,
        "cosine": lambda t: 0.5 * (1 + math.cos(math.pi * t)),
        "constant": lambda t: 1.0,
    }[name]
    return torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: max(factors(step / total), 1e-3))


def state_bytes(model: Classifier) -> bytes:
    """The wrapped network's weights as safetensors bytes."""
    return save({k: v.detach().cpu().contiguous() for k, v in model.net.state_dict().items()})


@torch.no_grad()
def accuracy(model: Classifier, data: DataSource, batch_size: int = VAL_BATCH) -> float:
    with frozen_mode(model):
        return float((model.predict_stream(data.batches(batch_size)).argmax(1) == data.labels).mean())


def tensor_batches(data: DataSource, device: torch.device, batch_size: int = VAL_BATCH) -> Batches:
    """(x, y) tensors of `data` on `device`, `batch_size` at a time, decoded ahead."""
    labels = torch.from_numpy(data.labels)
    for start, images in zip(range(0, len(data), batch_size), data.batches(batch_size), strict=True):
        yield to_tensor(images, device), labels[start:start + len(images)].to(device)


def _settings(config: dict) -> dict:
    """A run's settings that must match to resume it: those set (a checkpoint written before a setting existed
    lacks it, where it is unset)."""
    return {k: v for k, v in config.items() if v is not None}


def _write_log(out: Path, log: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(log[0]))
    writer.writeheader()
    writer.writerows(log)
    atomic_write(out / "log.csv", buffer.getvalue().encode())


def train(model: Classifier, train_set: DataSource, val_set: DataSource, config: TrainConfig, out: str | Path,
          loss_fn: LossFn = cross_entropy, card: dict | None = None, progress: Progress = Progress(),
          robust_val: RobustVal | None = None) -> dict:
    """Train `model` in place; write best.safetensors (by robust val accuracy when `robust_val` is given, ties
    broken by clean, else clean), last.safetensors, log.csv, model.json and the resumable checkpoint.pt."""
    if config.augment_shift is None:
        config = replace(config, augment_shift=default_shift(min(train_set.image_shape[:2])))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    device = model.device
    cuda = device.type == "cuda"
    if cuda:
        model.to(memory_format=torch.channels_last)
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    labels = torch.from_numpy(train_set.labels)
    optimiser = torch.optim.SGD(model.net.parameters(), lr=config.lr, momentum=config.momentum, nesterov=True,
                                weight_decay=config.weight_decay)
    schedule = make_schedule(optimiser, config.schedule, config.lr,
                             config.epochs * -(-len(labels) // config.batch_size))
    log, first = [], 1
    if (out / CHECKPOINT).is_file():
        state = torch.load(out / CHECKPOINT, map_location="cpu", weights_only=True)
        if _settings(state["config"]) != _settings(asdict(config)):
            raise RunError(f"{out} holds a training run with other settings ({state['config']}); "
                           "use another --out or the same settings to resume")
        model.net.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        torch.set_rng_state(state["rng"])
        gen.set_state(state["gen"])
        log, first = state["log"], state["epoch"] + 1
        progress.note(f"resuming {out} after epoch {state['epoch']}")
    start = time.perf_counter() - (log[-1]["seconds"] if log else 0.0)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()
    for epoch in range(first, config.epochs + 1):
        model.train()
        order = torch.randperm(len(labels), generator=gen)
        blocks = order.split(config.batch_size)
        total, seen = 0.0, 0
        with progress.bar(len(order), f"epoch {epoch}/{config.epochs}", "img") as bar:
            for idx, images in zip(blocks, train_set.stream([b.numpy() for b in blocks]), strict=True):
                x = random_shift(to_tensor(images), config.augment_shift, gen).to(device)
                if cuda:
                    x = x.contiguous(memory_format=torch.channels_last)
                with autocast:
                    loss = loss_fn(model, x, labels[idx].to(device))
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                schedule.step()
                total += loss.item() * len(idx)
                seen += len(idx)
                bar.update(len(idx))
        model.eval()
        row = {"epoch": epoch, "train_loss": total / seen, "lr": schedule.get_last_lr()[0],
               "val_acc": accuracy(model, val_set)}
        if robust_val is not None:
            rng = torch.get_rng_state()  # validation draws must not change the training stream
            row["val_robust_acc"] = robust_val(model, tensor_batches(val_set, device))
            torch.set_rng_state(rng)
        row["seconds"] = round(time.perf_counter() - start, 2)
        log.append(row)
        weights = state_bytes(model)
        atomic_write(out / "last.safetensors", weights)
        if all(selection_key(row) > selection_key(earlier) for earlier in log[:-1]):
            atomic_write(out / "best.safetensors", weights)
        _write_log(out, log)
        checkpoint = {"epoch": epoch, "model": model.net.state_dict(), "optimiser": optimiser.state_dict(),
                      "schedule": schedule.state_dict(), "rng": torch.get_rng_state(), "gen": gen.get_state(),
                      "log": log, "config": asdict(config)}
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write(out / CHECKPOINT, buffer.getvalue())
        robust = f"  val robust acc {row['val_robust_acc']:.4f}" if "val_robust_acc" in row else ""
        progress.note(f"epoch {epoch}: loss {row['train_loss']:.4f}  val acc {row['val_acc']:.4f}{robust}")
    best = max(log, key=selection_key)  # the first of equal keys
    summary = {**(card or {}), "config": asdict(config), "best_epoch": best["epoch"],
               "best_val_score": selection_key(best)[0],
               "selected_by": "val_robust_acc" if robust_val else "val_acc", "epochs": log,
               **cpu_setup()}
    write_json(out / "model.json", summary)
    return summary


def load_weights_into(model: Classifier, path: str | Path) -> None:
    """Replace the wrapped network's weights by those in a safetensors file written by `train`."""
    from .models.checkpoint import apply_state_dict, read_state_dict

    apply_state_dict(model.net, read_state_dict(path), str(path))


def same_weights(a: str | Path, b: str | Path) -> bool:
    """True when two safetensors files hold identical tensors."""
    from safetensors.torch import load_file

    x, y = load_file(str(a)), load_file(str(b))
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


__all__ = ["TrainConfig", "accuracy", "cross_entropy", "default_shift", "load_weights_into", "same_weights",
           "selection_key", "train"]

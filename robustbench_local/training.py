"""Supervised training of a Classifier on a SampleSet: seeded, logged per epoch, best and last weights kept."""
from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save

from .data import SampleSet
from .errors import SpecError
from .models import Classifier, frozen_mode, to_tensor
from .progress import Progress
from .runner.store import atomic_write, write_json

LossFn = Callable[[Classifier, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a training run (SGD with Nesterov momentum and a cosine schedule)."""

    epochs: int = 15
    lr: float = 0.05
    batch_size: int = 64
    weight_decay: float = 5e-4
    momentum: float = 0.9
    seed: int = 0
    augment_shift: int = 2

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise SpecError("epochs and batch size must be >= 1 and lr > 0; fix --epochs/--batch-size/--lr")


def cross_entropy(model: Classifier, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Plain supervised loss."""
    return F.cross_entropy(model(x), y)


def random_shift(x: torch.Tensor, shift: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each image by up to `shift` pixels (edge-padded), drawn from `gen`."""
    if shift == 0:
        return x
    padded = F.pad(x, (shift,) * 4, mode="replicate")
    offsets = torch.randint(0, 2 * shift + 1, (len(x), 2), generator=gen)
    h, w = x.shape[-2:]
    return torch.stack([p[:, i:i + h, j:j + w] for p, (i, j) in zip(padded, offsets.tolist(), strict=True)])


def state_bytes(model: Classifier) -> bytes:
    """The wrapped network's weights as safetensors bytes."""
    return save({k: v.detach().cpu().contiguous() for k, v in model.net.state_dict().items()})


@torch.no_grad()
def accuracy(model: Classifier, data: SampleSet, batch_size: int = 256) -> float:
    with frozen_mode(model):
        return float((model.predict(data.images, batch_size).argmax(1) == data.labels).mean())


def train(model: Classifier, train_set: SampleSet, val_set: SampleSet, config: TrainConfig, out: str | Path,
          loss_fn: LossFn = cross_entropy, card: dict | None = None, progress: Progress = Progress()) -> dict:
    """Train `model` in place; write best.safetensors (by val accuracy), last.safetensors, log.csv, model.json."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    device = model.device
    images = to_tensor(train_set.images)
    labels = torch.from_numpy(train_set.labels)
    optimiser = torch.optim.SGD(model.net.parameters(), lr=config.lr, momentum=config.momentum, nesterov=True,
                                weight_decay=config.weight_decay)
    steps = config.epochs * -(-len(labels) // config.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, config.lr, total_steps=steps, pct_start=0.15)
    log, best = [], -1.0
    start = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = torch.randperm(len(labels), generator=gen)
        total, seen = 0.0, 0
        with progress.bar(len(order), f"epoch {epoch}/{config.epochs}", "img") as bar:
            for idx in order.split(config.batch_size):
                x = random_shift(images[idx], config.augment_shift, gen).to(device)
                loss = loss_fn(model, x, labels[idx].to(device))
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                schedule.step()
                total += loss.item() * len(idx)
                seen += len(idx)
                bar.update(len(idx))
        model.eval()
        row = {"epoch": epoch, "train_loss": total / seen, "val_acc": accuracy(model, val_set),
               "seconds": round(time.perf_counter() - start, 2)}
        log.append(row)
        weights = state_bytes(model)
        atomic_write(out / "last.safetensors", weights)
        if row["val_acc"] > best:
            best = row["val_acc"]
            atomic_write(out / "best.safetensors", weights)
        progress.note(f"epoch {epoch}: loss {row['train_loss']:.4f}  val acc {row['val_acc']:.4f}")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(log[0]))
    writer.writeheader()
    writer.writerows(log)
    atomic_write(out / "log.csv", buffer.getvalue().encode())
    summary = {**(card or {}), "config": asdict(config), "best_val_acc": best, "epochs": log,
               "torch": torch.__version__, "threads": torch.get_num_threads()}
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


__all__ = ["TrainConfig", "accuracy", "cross_entropy", "load_weights_into", "same_weights", "train"]

"""`rbl train`'s settings as plain data: methods, LR schedules and the hyper-parameters of a run (imports no torch,
so the CLI's help needs no training code)."""
from __future__ import annotations

from dataclasses import dataclass

from .errors import SpecError

METHODS = ("standard", "pgd-at", "trades", "fast-at")
DEFAULT_SCHEDULE = {"standard": "onecycle", "pgd-at": "piecewise", "trades": "piecewise", "fast-at": "cyclic"}
SCHEDULES = ("onecycle", "cyclic", "piecewise", "cosine", "constant")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a training run (SGD with Nesterov momentum)."""

    epochs: int = 15
    lr: float = 0.05
    batch_size: int = 64
    weight_decay: float = 5e-4
    momentum: float = 0.9
    seed: int = 0
    augment_shift: int | None = None  # pixels; None: `default_shift` of the training images
    schedule: str = "onecycle"
    method: str = "standard"

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise SpecError("epochs and batch size must be >= 1 and lr > 0; fix --epochs/--batch-size/--lr")
        if self.schedule not in SCHEDULES:
            raise SpecError(f"unknown --schedule {self.schedule!r}; use one of {', '.join(SCHEDULES)}")

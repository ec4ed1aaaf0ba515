"""`rbl train`'s settings as plain data: methods, LR schedules and the hyper-parameters of a run (imports no torch,
so the CLI's help needs no training code)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import SpecError

METHODS = ("standard", "pgd-at", "trades", "fast-at", "distill", "ard")
ADVERSARIAL = ("pgd-at", "trades", "fast-at", "ard")  # trained on attacks: an --eps, robust validation
DEFAULT_SCHEDULE = {"standard": "onecycle", "pgd-at": "piecewise", "trades": "piecewise", "fast-at": "cyclic",
                    "distill": "onecycle", "ard": "piecewise"}
DEFAULT_STEPS = {"ard": 10}  # the ARD paper's 10 PGD steps (of 2/255 at eps 8/255); 7 (Madry's CIFAR-10) otherwise
SCHEDULES = ("onecycle", "cyclic", "piecewise", "cosine", "constant")
# Distillation defaults, (temperature, KD weight): Hinton KD as the CRD benchmark (Tian et al. 2020, RepDistiller)
# runs it, T=4 with 0.9 on the KL term and 0.1 on cross-entropy; ARD as Goldblum et al. 2020's CIFAR-10 code,
# T=30 with all weight on the KL term.
DISTILLATION = {"distill": (4.0, 0.9), "ard": (30.0, 1.0)}


def distillation_settings(method: str, teacher: object | None, temperature: float | None,
                          kd_alpha: float | None) -> tuple[float | None, float | None]:
    """The checked (temperature, KD weight) of a distillation method, its defaults filled in; (None, None) for the
    other methods, which take no --teacher, --temperature or --kd-alpha."""
    if method not in DISTILLATION:
        given = [flag for flag, value in (("--teacher", teacher), ("--temperature", temperature),
                                          ("--kd-alpha", kd_alpha)) if value is not None]
        if given:
            raise SpecError(f"{', '.join(given)} applies to --method distill or ard only; drop it for {method}")
        return None, None
    if teacher is None:
        raise SpecError(f"--method {method} distils a teacher; pass --teacher SPEC (e.g. --teacher builtin:digits-cnn)")
    default_t, default_a = DISTILLATION[method]
    temperature = default_t if temperature is None else temperature
    kd_alpha = default_a if kd_alpha is None else kd_alpha
    if not (math.isfinite(temperature) and temperature > 0):
        raise SpecError(f"--temperature must be a finite number > 0, got {temperature}")
    if not 0 <= kd_alpha <= 1:
        raise SpecError(f"--kd-alpha is the weight of the distillation term, in [0, 1]; got {kd_alpha}")
    return temperature, kd_alpha


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
    teacher: str | None = None  # distillation: the teacher's spec, its temperature and the KD term's weight
    temperature: float | None = None
    kd_alpha: float | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise SpecError("epochs and batch size must be >= 1 and lr > 0; fix --epochs/--batch-size/--lr")
        if self.schedule not in SCHEDULES:
            raise SpecError(f"unknown --schedule {self.schedule!r}; use one of {', '.join(SCHEDULES)}")

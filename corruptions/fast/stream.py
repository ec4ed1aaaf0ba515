"""Corrupt-then-classify on the model's device: a clean uint8 batch goes to the device once and is corrupted there
under each condition and fed straight to the model, so no corrupted copy of the data set is ever materialised on
the host."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from robustbench_local.models.classifier import Classifier, check_logits, frozen_mode


def to_device(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 NHWC numpy -> uint8 NCHW tensor on `device`."""
    return torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2)


@torch.no_grad()
def corrupted_logits(model: Classifier, clean: torch.Tensor, corrupt: Callable[..., torch.Tensor], corruption: str,
                     severity: int, seeds: np.ndarray, params: str) -> np.ndarray:
    """Logits (float32 numpy) of `model` on the uint8 NCHW batch `clean` (on the model's device) corrupted there by
    `corrupt(clean, corruption, severity, seeds, params)` (a backend's declared `on_device` function)."""
    with frozen_mode(model):
        corrupted = corrupt(clean, corruption, severity, [int(v) for v in seeds], params)
        logits = model(corrupted.float().div_(255)).float().cpu().numpy()
    check_logits(logits, model.name)
    return logits

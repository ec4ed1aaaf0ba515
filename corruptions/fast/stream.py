"""Corrupt-then-classify on the model's device: each clean uint8 batch goes to the device once, is corrupted there
and fed straight to the model, so no corrupted copy of the data set is ever materialised on the host."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from robustbench_local.models.classifier import Classifier, check_logits, frozen_mode

from . import corrupt_tensor


def corrupted_logits(model: Classifier, images: np.ndarray, corruption: str, severity: int, seeds: np.ndarray,
                     params: str, batch_size: int, device: torch.device) -> Iterator[np.ndarray]:
    """Logits (float32 numpy) of `model` on `images` (uint8 NHWC) corrupted on `device`, `batch_size` at a time."""
    with torch.no_grad(), frozen_mode(model):
        for s in range(0, len(images), batch_size):
            clean = torch.from_numpy(np.ascontiguousarray(images[s:s + batch_size])).to(device).permute(0, 3, 1, 2)
            corrupted = corrupt_tensor(clean, corruption, severity, [int(v) for v in seeds[s:s + batch_size]], params)
            logits = model(corrupted.float().div_(255)).float().cpu().numpy()
            check_logits(logits, model.name)
            yield logits

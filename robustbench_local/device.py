"""The one place the compute device is chosen."""
from __future__ import annotations

import os

import torch


def pick_device(requested: str | None = None) -> torch.device:
    """`requested` ('cpu', 'cuda', 'cuda:1') or $RBL_DEVICE wins; otherwise CUDA when present, else CPU."""
    name = requested or os.environ.get("RBL_DEVICE")
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")

"""Generated ImageNet-like data for the benchmarks: JPEGs of 300-500 px in class folders, and a light model.

`jpeg_folder(n)` writes n photo-like JPEGs (smooth colour fields with texture, quality 90, ~30 KB each) into
10 class folders once, under $RBL_BENCH_CACHE (default: the system temp folder), and returns the folder.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

CLASSES = 10


def jpeg_folder(n: int) -> Path:
    """A folder `<class>/<i>.JPEG` of `n` generated photos (reused when already complete)."""
    root = Path(os.environ.get("RBL_BENCH_CACHE", tempfile.gettempdir())) / f"rbl-bench-jpegs-{n}"
    done = root / ".complete"
    if done.is_file():
        return root
    rng = np.random.default_rng(n)
    for i in range(n):
        h, w = (int(v) for v in rng.integers(300, 500, 2))
        coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        field = np.asarray(Image.fromarray(coarse).resize((w, h), Image.BICUBIC), dtype=np.int16)
        texture = rng.normal(0, 12, (h, w, 3)).astype(np.int16)
        folder = root / f"class{i % CLASSES}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(field + texture, 0, 255).astype(np.uint8)).save(folder / f"{i:06d}.JPEG", quality=90)
    done.touch()
    return root


class PooledLinear(nn.Module):
    """A light classifier for runs at scale: average-pool to 16 x 16, then one linear layer (features: its input)."""

    def __init__(self, num_classes: int = CLASSES) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(16)
        self.head = nn.Linear(3 * 16 * 16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(x).flatten(1))


def pooled_linear(num_classes: int = CLASSES) -> nn.Module:
    """`python:bench.jpegs:pooled_linear?norm=imagenet` (seeded by the run seed like every random-init model)."""
    return PooledLinear(num_classes)

"""Corruption backends: interchangeable functions from a uint8 NHWC batch to a corrupted uint8 batch.

A backend is `fn(images, corruption, severity, seeds, params) -> images`: `images` uint8 (N, H, W, 3),
`seeds` one 32-bit stream seed per image (from `engine.sample_seeds`, so output never depends on batching),
`params` a parameter-set name from `names.PARAM_SETS`. `processes` says whether the engine should fan
batches out over worker processes (CPU-bound numpy backends) or call it in-process (e.g. a torch backend).
Adding a backend = one entry here; `--backend NAME` then selects it everywhere.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from robustbench_local.errors import SpecError

Backend = Callable[[np.ndarray, str, int, np.ndarray, str], np.ndarray]


@dataclass(frozen=True)
class BackendInfo:
    """Where a backend lives and how the engine runs it."""

    module: str
    function: str
    description: str
    processes: bool

    def load(self) -> Backend:
        return getattr(importlib.import_module(self.module), self.function)


BACKENDS: dict[str, BackendInfo] = {
    "reference": BackendInfo("robustbench_local.corruptions.reference", "corrupt_batch",
                             "imagecorruptions 1.1.2 (+ compat layer) per image, fanned out over processes", True),
    "fast": BackendInfo("robustbench_local.corruptions.fast", "corrupt_batch",
                        "batched torch ops on (N, C, H, W) tensors, CPU or GPU (corruptions/fast)", False),
}


def get_backend(name: str) -> BackendInfo:
    """The registered backend `name`, or a SpecError listing the known ones."""
    if name not in BACKENDS:
        raise SpecError(f"unknown corruption backend {name!r}; known: {', '.join(BACKENDS)}")
    return BACKENDS[name]

"""Corruption backends: interchangeable functions from a uint8 NHWC batch to a corrupted uint8 batch.

A backend is `fn(images, corruption, severity, seeds, params) -> images`: `images` uint8 (N, H, W, 3),
`seeds` one 32-bit stream seed per image (from `engine.sample_seeds`, so output never depends on batching),
`params` a parameter-set name from `names.PARAM_SETS`. Backends are entries of
`robustbench_local.registry.CORRUPTION_BACKENDS` (built-ins in entries.py; other packages add theirs through the
`robustbench_local.corruption_backends` entry-point group); `--backend NAME` then selects it everywhere.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from robustbench_local.registry import CORRUPTION_BACKENDS, Entry

Backend = Callable[[np.ndarray, str, int, np.ndarray, str], np.ndarray]


def get_backend(name: str) -> Entry:
    """The registered backend `name`, or a SpecError listing the known ones."""
    return CORRUPTION_BACKENDS.get(name)

"""Shards: a task's condition over a range of sample positions, runnable in any process.

Shard boundaries are multiples of the batch size, so every inference batch holds the same samples
whatever the shard size or executor, and every worker runs with the thread count of the process that planned the
run (float kernels can sum in another order with another thread count); with randomness keyed by sample id,
records are identical, bit for bit.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..data import SampleSet
from ..models import Classifier
from ..progress import Progress
from ..records import Records
from ..suites import Condition, TaskContext


@dataclass(frozen=True)
class ShardJob:
    """One unit of scheduling: positions [start, stop) of the data under one task's condition."""

    task_key: str
    suite_module: str
    condition: Condition
    start: int
    stop: int

    @property
    def name(self) -> str:
        return f"{self.start:07d}-{self.stop:07d}"


@dataclass(frozen=True)
class Payload:
    """Everything a worker needs to run any shard of one run (sent once per worker)."""

    key: str
    model: Classifier
    data: SampleSet
    seed: int
    options: dict[str, Any]
    temperature: float | None
    batch_size: int
    run_dir: str
    data_spec: str = ""
    threads: int = field(default_factory=torch.get_num_threads)  # intra-op threads of every inference


def shard_ranges(n: int, shard_size: int | None, batch_size: int, shardable: bool = True) -> list[tuple[int, int]]:
    """[start, stop) ranges covering n samples; sizes are rounded up to a multiple of `batch_size`."""
    if not shardable or not shard_size or shard_size >= n:
        return [(0, n)]
    size = -(-shard_size // batch_size) * batch_size
    return [(a, min(a + size, n)) for a in range(0, n, size)]


class Worker:
    """Runs shards of one payload, with its thread count; caches the clean logits of each range it has seen."""

    def __init__(self, payload: Payload, progress: Progress) -> None:
        torch.set_num_threads(payload.threads)
        self.payload = payload
        self.progress = progress
        self._clean: dict[tuple[int, int], np.ndarray] = {}
        self.cache: dict = {}

    def clean_logits(self, start: int, stop: int) -> np.ndarray:
        if (start, stop) not in self._clean:
            images = self.payload.data.images[start:stop]
            self._clean[(start, stop)] = self.payload.model.predict(images, self.payload.batch_size)
        return self._clean[(start, stop)]

    def run(self, job: ShardJob) -> Records:
        p = self.payload
        data = p.data if (job.start, job.stop) == (0, len(p.data)) else p.data.subset(np.arange(job.start, job.stop))
        ctx = TaskContext(p.model, data, p.seed, job.task_key, p.options, p.temperature, p.batch_size,
                          self.progress, p.run_dir, lambda: self.clean_logits(job.start, job.stop), p.data_spec,
                          self.cache)
        return importlib.import_module(job.suite_module).SUITE.run(job.condition, ctx)

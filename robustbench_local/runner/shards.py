"""Shards: a range of sample positions under one or more of a suite's conditions, runnable in any process.

Shard boundaries are multiples of the batch size, so every inference batch holds the same samples
whatever the shard size or executor, and every worker runs with the thread count of the process that planned the
run (float kernels can sum in another order with another thread count); with randomness keyed by sample id,
records are identical, bit for bit. Workers receive the data source, which travels as its spec (see
DataSource.__reduce_ex__): each worker opens the data itself and reads only its own shard.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..data import DataSource
from ..models import Classifier
from ..progress import Progress
from ..records import Records
from ..registry import load_target
from ..suites import CleanLogits, Condition, TaskContext

GROUP_BYTES = 256 << 20  # a grouped shard keeps its conditions' logits in memory: bound their size


@dataclass(frozen=True)
class ShardJob:
    """One unit of scheduling: positions [start, stop) of the data under the conditions of `tasks`
    ((task key, condition) pairs of one suite; several when the suite runs its conditions in one pass)."""

    tasks: tuple[tuple[str, Condition], ...]
    suite_target: str  # where the suite object lives ("module:attribute"): a worker process loads it itself
    start: int
    stop: int

    @property
    def name(self) -> str:
        return shard_name(self.start, self.stop)

    @property
    def key(self) -> str:
        return ",".join(key for key, _ in self.tasks) + ":" + self.name


def shard_name(start: int, stop: int) -> str:
    return f"{start:07d}-{stop:07d}"


@dataclass(frozen=True)
class Payload:
    """Everything a worker needs to run any shard of one run (sent once per worker)."""

    key: str
    model: Classifier
    data: DataSource
    seed: int
    options: dict[str, Any]
    temperature: float | None
    batch_size: int
    run_dir: str
    limit: int | None = None
    threads: int = field(default_factory=torch.get_num_threads)  # intra-op threads of every inference


def shard_ranges(n: int, shard_size: int | None, batch_size: int, shardable: bool = True) -> list[tuple[int, int]]:
    """[start, stop) ranges covering n samples; sizes are rounded up to a multiple of `batch_size`."""
    if not shardable or not shard_size or shard_size >= n:
        return [(0, n)]
    size = -(-shard_size // batch_size) * batch_size
    return [(a, min(a + size, n)) for a in range(0, n, size)]


def group_shard_size(n_conditions: int, num_classes: int, batch_size: int) -> int:
    """Default shard size of a suite that runs its conditions in one pass: their logits stay under GROUP_BYTES."""
    per_sample = max(1, n_conditions * num_classes * 4)
    return max(batch_size, GROUP_BYTES // per_sample // batch_size * batch_size)


class Worker:
    """Runs shards of one payload, with its thread count; caches the clean logits of each range it has seen."""

    def __init__(self, payload: Payload, progress: Progress) -> None:
        torch.set_num_threads(payload.threads)
        self.payload = payload
        self.progress = progress
        self._clean: dict[tuple[int, int], np.ndarray] = {}
        self.cache: dict = {}

    def clean_logits(self, start: int, stop: int) -> CleanLogits:
        """The clean logits of positions [start, stop), computed on first use (or kept from a suite that did)."""
        p = self.payload
        return CleanLogits(lambda: p.model.predict_stream(p.data.batches(p.batch_size, start, stop)), self._clean,
                           (start, stop))

    def run(self, job: ShardJob) -> list[Records]:
        """Records of each of the job's tasks on its range, in the order of `job.tasks`."""
        p = self.payload
        data = p.data if (job.start, job.stop) == (0, len(p.data)) else p.data.subset(slice(job.start, job.stop))
        ctx = TaskContext(p.model, data, p.seed, p.options, p.temperature, p.batch_size, self.progress, p.run_dir,
                          self.clean_logits(job.start, job.stop), self.cache, p.limit)
        suite = load_target(job.suite_target)
        return suite.run_group([condition for _, condition in job.tasks], ctx)

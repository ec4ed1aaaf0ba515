"""Executors run shard jobs: in this process, on a local process pool, or on a Ray cluster."""
from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

import torch

from ..allocator import keep_freed_buffers
from ..data.stream import set_workers
from ..data.stream import workers as decode_workers
from ..errors import RunError, SpecError
from ..progress import Progress
from ..records import Records
from .shards import Payload, ShardJob, Worker

OnDone = Callable[[ShardJob, list[Records]], None]
RETRIES = 3


class Executor(Protocol):
    def run(self, payload: Payload, jobs: list[ShardJob], on_done: OnDone) -> None:
        """Run every job, calling `on_done(job, records of each of its tasks)` in this process as each finishes."""


class InProcessExecutor:
    """Runs shards one after another in this process (the default)."""

    def __init__(self, progress: Progress = Progress()) -> None:
        self.progress = progress

    def __repr__(self) -> str:
        return "InProcessExecutor()"

    def run(self, payload: Payload, jobs: list[ShardJob], on_done: OnDone) -> None:
        worker = Worker(payload, self.progress)
        for job in jobs:
            on_done(job, worker.run(job))


_WORKER: Worker | None = None


def _init_worker(payload: Payload, decode_threads: int) -> None:
    global _WORKER
    keep_freed_buffers()
    set_workers(decode_threads)
    if torch.cuda.is_available():
        payload.model.to(torch.device("cuda", os.getpid() % torch.cuda.device_count()))
    _WORKER = Worker(payload, Progress(quiet=True))


def _run_in_worker(job: ShardJob) -> list[Records]:
    assert _WORKER is not None, "worker not initialised"
    return _WORKER.run(job)


class PoolExecutor:
    """A local pool of `workers` spawned processes, each with the run's thread count (so that records equal an
    in-process run's bit for bit); shards lost to a dead worker are retried."""

    def __init__(self, workers: int, progress: Progress = Progress(), retries: int = RETRIES) -> None:
        if workers < 1:
            raise SpecError(f"--workers must be at least 1, got {workers}")
        self.workers, self.progress, self.retries = workers, progress, retries

    def __repr__(self) -> str:
        return f"PoolExecutor(workers={self.workers}, retries={self.retries})"

    def run(self, payload: Payload, jobs: list[ShardJob], on_done: OnDone) -> None:
        pending = {job.key: job for job in jobs}
        cores = os.cpu_count() or 1
        if self.workers * payload.threads > cores:
            self.progress.note(f"notice: {self.workers} workers x {payload.threads} threads on {cores} cores; "
                               f"--threads {max(1, cores // self.workers)} runs faster (records then differ from "
                               f"{payload.threads}-thread runs in the last bits)")
        decode_threads = max(1, decode_workers() // self.workers)
        for attempt in range(self.retries + 1):
            try:
                with ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_init_worker, initargs=(payload, decode_threads)) as pool:
                    futures = {pool.submit(_run_in_worker, job): key for key, job in pending.items()}
                    for future in as_completed(futures):
                        records = future.result()
                        on_done(pending.pop(futures[future]), records)
                return
            except BrokenProcessPool:
                self.progress.note(f"a worker process died; retrying {len(pending)} unfinished shard(s) "
                                   f"(attempt {attempt + 1} of {self.retries})")
        raise RunError(f"worker processes kept dying; {len(pending)} shard(s) unfinished after {self.retries} "
                       "retries (finished shards are kept: fix the cause and re-run to resume)")


_RAY_WORKERS: dict[str, Worker] = {}


def _ray_run(payload: Payload, job: ShardJob) -> list[Records]:
    worker = _RAY_WORKERS.get(payload.key)
    if worker is None:
        keep_freed_buffers()
        if torch.cuda.is_available():
            payload.model.to(torch.device("cuda"))
        worker = _RAY_WORKERS.setdefault(payload.key, Worker(payload, Progress(quiet=True)))
    return worker.run(job)


class RayExecutor:
    """Shards as Ray tasks (retried when a worker dies), each with the run's thread count; one GPU per task when the
    cluster has GPUs.

    With no `address`, starts a local Ray instance whose workers see this process's import path.
    """

    def __init__(self, address: str | None = None, num_cpus: int | None = None, retries: int = RETRIES) -> None:
        self.address, self.num_cpus, self.retries = address, num_cpus, retries

    def __repr__(self) -> str:
        return f"RayExecutor(address={self.address!r}, num_cpus={self.num_cpus}, retries={self.retries})"

    def _connect(self):
        try:
            import ray
        except ImportError:
            raise SpecError("Ray is not installed; pip install 'robustbench-local[ray]'") from None
        if not ray.is_initialized():
            env = {} if self.address else {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}}
            ray.init(address=self.address, num_cpus=None if self.address else self.num_cpus, runtime_env=env,
                     include_dashboard=False, log_to_driver=False, configure_logging=False)
        return ray

    def run(self, payload: Payload, jobs: list[ShardJob], on_done: OnDone) -> None:
        ray = self._connect()
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        remote = ray.remote(num_gpus=gpus, max_retries=self.retries)(_ray_run)
        ref = ray.put(payload)
        futures = {remote.remote(ref, job): job for job in jobs}
        while futures:
            done, _ = ray.wait(list(futures), num_returns=1)
            on_done(futures.pop(done[0]), ray.get(done[0]))


def make_executor(kind: str = "inprocess", workers: int = 1, ray_address: str | None = None,
                  progress: Progress = Progress()) -> Executor:
    """`inprocess` (default; `pool` when workers > 1), `pool` or `ray`."""
    if kind == "inprocess" and workers > 1:
        kind = "pool"
    if kind == "inprocess":
        return InProcessExecutor(progress)
    if kind == "pool":
        return PoolExecutor(workers, progress)
    if kind == "ray":
        return RayExecutor(ray_address, workers if workers > 1 else None)
    raise SpecError(f"unknown executor {kind!r}; use inprocess, pool or ray")

"""The notebook/script entry point: `evaluate(model, data, suites=..., out=...)`."""
from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .data import SampleSet
from .models import Classifier
from .progress import Progress
from .results import RunResult, load_run, write_metrics
from .runner import EvalSpec, aggregate
from .runner.execute import load_inputs, run_inputs
from .runner.executors import Executor
from .runner.lock import run_lock


def evaluate(model: str | Classifier, data: str | SampleSet, suites: Sequence[str] = ("clean",),
             out: str | Path | None = None, seed: int = 0, limit: int | None = None, batch_size: int = 256,
             calibration_data: str | SampleSet | None = "auto", arch: str | None = None,
             trust_checkpoint: bool = False, quiet: bool = True, executor: Executor | None = None,
             shard_size: int | None = None, **options: Any) -> RunResult:
    """Evaluate `model` (spec or Classifier) on `data` (spec or SampleSet) and return the finished run.

    `options` are suite settings (e.g. eps="8/255"); `out` defaults to a new temporary directory.
    `executor` (see robustbench_local.runner.executors.make_executor) and `shard_size` spread the work;
    records are identical whatever they are.
    A SampleSet as `data` with calibration_data='auto' has no val split: pass a SampleSet or a spec.
    """
    calibration = calibration_data if isinstance(calibration_data, SampleSet) else None
    if isinstance(data, SampleSet) and calibration_data == "auto":
        calibration_data = None
    spec = EvalSpec(model=model if isinstance(model, str) else model.name,
                    data=data if isinstance(data, str) else data.name, suites=list(suites), seed=seed,
                    limit=limit, batch_size=batch_size, options=options, arch=arch,
                    trust_checkpoint=trust_checkpoint,
                    calibration_data=None if calibration is not None else calibration_data)
    root = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="rbl-run-"))
    return run_spec(spec, root, Progress(quiet), None if isinstance(model, str) else model,
                    data.limit(limit) if isinstance(data, SampleSet) else None, calibration, executor, shard_size)


def run_spec(spec: EvalSpec, out: Path, progress: Progress, model: Classifier | None = None,
             data: SampleSet | None = None, calibration: SampleSet | None = None,
             executor: Executor | None = None, shard_size: int | None = None) -> RunResult:
    """Run (or resume) `spec` into `out` with `executor` (default in-process), then write metrics.csv/json;
    `out` is held by this process throughout (another process on it is refused)."""
    inputs = load_inputs(spec, progress, model, data, calibration)  # checked before `out` is touched
    with run_lock(out, progress):
        store = run_inputs(inputs, out, progress, executor, shard_size)
        write_metrics(store.root, aggregate(store, progress))
    return load_run(store.root)

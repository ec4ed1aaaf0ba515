"""The notebook/script entry point: `evaluate(model, data, suites=..., out=...)`."""
from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .data import DataSource
from .metrics.conformal import ALPHAS
from .models import Classifier
from .progress import Progress
from .results import RunResult, load_run, write_metrics
from .runner import EvalSpec, aggregate
from .runner.execute import load_inputs, run_inputs
from .runner.executors import Executor
from .runner.lock import run_lock


def evaluate(model: str | Classifier, data: str | DataSource, suites: Sequence[str] = ("clean",),
             out: str | Path | None = None, seed: int = 0, limit: int | None = None, batch_size: int = 256,
             calibration_data: str | DataSource | None = "auto", arch: str | None = None,
             trust_checkpoint: bool = False, quiet: bool = True, executor: Executor | None = None,
             shard_size: int | None = None, data_workers: int | None = None,
             conformal_alpha: Sequence[float] = ALPHAS, **options: Any) -> RunResult:
    """Evaluate `model` (spec or Classifier) on `data` (spec or DataSource) and return the finished run.

    `options` are suite settings (e.g. eps="8/255"); `out` defaults to a new temporary directory.
    `executor` (see robustbench_local.runner.executors.make_executor) and `shard_size` spread the work,
    `data_workers` threads decode image files; records are identical whatever they are. `conformal_alpha`: the
    miscoverage levels of the conformal sets fitted on the calibration data beside the temperature.
    A DataSource as `data` with calibration_data='auto' uses its origin's val split when it was opened from a spec
    (`load_data`), and none when it was made from arrays: then pass a DataSource or a spec.
    """
    calibration = calibration_data if isinstance(calibration_data, DataSource) else None
    if isinstance(data, DataSource) and calibration_data == "auto":
        calibration_data = data.origin.spec if data.origin is not None else None
    data_spec = data if isinstance(data, str) else data.origin.spec if data.origin else data.name
    spec = EvalSpec(model=model if isinstance(model, str) else model.name, data=data_spec, suites=list(suites),
                    seed=seed, limit=limit, batch_size=batch_size, options=options, arch=arch,
                    trust_checkpoint=trust_checkpoint, data_workers=data_workers, conformal_alpha=list(conformal_alpha),
                    calibration_data=None if calibration is not None else calibration_data)
    root = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="rbl-run-"))
    return run_spec(spec, root, Progress(quiet), None if isinstance(model, str) else model,
                    data.limit(limit) if isinstance(data, DataSource) else None, calibration, executor, shard_size)


def run_spec(spec: EvalSpec, out: Path, progress: Progress, model: Classifier | None = None,
             data: DataSource | None = None, calibration: DataSource | None = None,
             executor: Executor | None = None, shard_size: int | None = None) -> RunResult:
    """Run (or resume) `spec` into `out` with `executor` (default in-process), then write metrics.csv/json;
    `out` is held by this process throughout (another process on it is refused)."""
    inputs = load_inputs(spec, progress, model, data, calibration)  # checked before `out` is touched
    with run_lock(out, progress):
        store = run_inputs(inputs, out, progress, executor, shard_size)
        write_metrics(store.root, aggregate(store, progress))
    return load_run(store.root)

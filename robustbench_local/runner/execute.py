"""Plan tasks from an EvalSpec, run the unfinished ones, and aggregate every task into the metrics table."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data import DataSource, load_data
from ..data.stream import set_workers
from ..errors import DataError, ModelError, SpecError
from ..metrics import fit_temperature, nll_at
from ..models import Classifier, load_model
from ..progress import Progress
from ..records import Records
from ..seeding import derive_seed
from ..suites import SUITE_MODULES, Condition, Suite, get_suite
from .executors import Executor, InProcessExecutor
from .shards import Payload, ShardJob, group_shard_size, shard_ranges
from .spec import EvalSpec
from .store import CALIBRATION, RunStore, write_json

METRIC_COLUMNS = ["model", "dataset", "suite", "condition", "metric", "value", "ci_low", "ci_high", "n", "params"]
METRICS_CACHE_VERSION = 3  # bump when suites' per-task metric rows change, so cached ones are recomputed once
VERSIONED = ("torch", "torchvision", "torchattacks", "imagecorruptions", "numpy", "robustbench-local")


@dataclass(frozen=True)
class Task:
    """One unit of work: a suite's condition, with a key that is stable across runs."""

    suite: Suite
    condition: Condition

    @property
    def key(self) -> str:
        slug = re.sub(r"[^A-Za-z0-9.=-]+", "_", self.condition.name).strip("_")[:80]
        digest = derive_seed(self.suite.name, self.condition.name, json.dumps(self.condition.params, sort_keys=True))
        return f"{self.suite.name}--{slug}--{digest % 16**8:08x}"


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def resolve_options(suites: list[Suite], given: dict[str, Any]) -> dict[str, Any]:
    """Every selected suite's option defaults, overridden by `given` (strings are parsed by the option)."""
    declared = {opt.name: opt for suite in suites for opt in suite.options}
    unknown = set(given) - declared.keys()
    if unknown:
        raise SpecError(f"option(s) {', '.join(sorted(unknown))} belong to no selected suite "
                        f"({', '.join(s.name for s in suites)}); check --suite")
    resolved = {}
    for name, opt in declared.items():
        value = given.get(name, opt.default)
        resolved[name] = opt.parse(value) if isinstance(value, str) else value
    return resolved


def plan(spec: EvalSpec, options: dict[str, Any] | None = None) -> list[Task]:
    """The tasks of `spec`, in suite order (`options`: already resolved suite options, if at hand)."""
    suites = [get_suite(name) for name in spec.suites]
    options = options if options is not None else resolve_options(suites, spec.options)
    return [Task(suite, cond) for suite in suites for cond in suite.conditions(options)]


def check_compatible(model: Classifier, data: DataSource) -> None:
    """The model must output one logit per class of the data."""
    if model.num_classes != data.num_classes:
        raise ModelError(f"the model outputs {model.num_classes} classes but {data.name} has {data.num_classes}; "
                         "pick the matching model (e.g. ?num_classes=" f"{data.num_classes}) or data set")


LEAK_SHARE = 0.05  # above this share of the fitting set found in the evaluated set, fitting is refused


def check_disjoint(fit: DataSource, evaluated: DataSource, purpose: str, progress: Progress) -> None:
    """Refuse fitting on the evaluated images (same file, or same pixels for in-memory sets); a few shared images
    (exact duplicates inside a data set) only draw a warning."""
    shared = int(np.isin(fit.origins(), evaluated.origins()).sum())
    if shared > LEAK_SHARE * len(fit):
        raise DataError(f"{fit.name} shares {shared} of its {len(fit)} images with the evaluated set "
                        f"{evaluated.name}; {purpose} on them would score the model on its own fitting data: pass "
                        "a disjoint --calibration-data, or ?holdout=N on an image folder")
    if shared:
        progress.note(f"warning: {fit.name} shares {shared} of its {len(fit)} images with {evaluated.name} "
                      f"(exact duplicates?); kept for {purpose}")


def fit_run_temperature(store: RunStore, spec: EvalSpec, model: Classifier, data: DataSource,
                        calibration: DataSource | None, progress: Progress) -> float | None:
    """The clean-fitted temperature of this run, computed once and kept in calibration.json."""
    cached = store.read_json(CALIBRATION)
    if cached is not None:
        return cached["temperature"]
    if calibration is None and spec.calibration_data not in (None, "none"):
        source = spec.data if spec.calibration_data == "auto" else spec.calibration_data
        try:
            calibration = load_data(source, "val")
        except DataError as exc:
            if spec.calibration_data != "auto":
                raise
            progress.note(f"notice: no held-out val split for temperature scaling ({exc}); "
                          "calibration is reported raw only (pass --calibration-data DATA)")
    if calibration is None:
        return None
    check_compatible(model, calibration)
    check_disjoint(calibration, data, "fitting the temperature", progress)
    logits = model.predict_stream(calibration.batches(spec.batch_size))
    t = fit_temperature(logits, calibration.labels)
    write_json(store.root / CALIBRATION, {
        "temperature": t, "n": len(calibration), "data": calibration.name, "data_fingerprint": calibration.fingerprint,
        "nll_before": nll_at(logits, calibration.labels, 1.0), "nll_after": nll_at(logits, calibration.labels, t),
        "method": "bounded scalar minimisation of NLL over log T in [0.01, 100]"})
    return t


def shard_jobs(tasks: list[Task], store: RunStore, n: int, num_classes: int, shard_size: int | None,
               batch_size: int) -> dict[str, list[ShardJob]]:
    """Task key -> the shard jobs covering it; a grouped suite's conditions share one job per shard."""
    jobs: dict[str, list[ShardJob]] = {}
    for suite in dict.fromkeys(t.suite for t in tasks):
        ours = [t for t in tasks if t.suite is suite]
        mine = [t for t in ours if not store.has_task(t.key)]
        size = shard_size or (group_shard_size(len(ours), num_classes, batch_size) if suite.grouped else None)
        ranges = shard_ranges(n, size, batch_size, suite.shardable)
        groups = [mine] if suite.grouped else [[t] for t in mine]
        for group in filter(None, groups):
            for a, b in ranges:
                job = ShardJob(tuple((t.key, t.condition) for t in group), SUITE_MODULES[suite.name], a, b)
                for t in group:
                    jobs.setdefault(t.key, []).append(job)
    return jobs


def run_tasks(spec: EvalSpec, out: str | Path, progress: Progress = Progress(),
              model: Classifier | None = None, data: DataSource | None = None,
              calibration: DataSource | None = None, executor: Executor | None = None,
              shard_size: int | None = None) -> RunStore:
    """Run every unfinished shard of `spec` into the run dir `out`; finished shards and tasks are kept."""
    set_workers(spec.data_workers)
    options = resolve_options([get_suite(n) for n in spec.suites], spec.options)
    tasks = plan(spec, options)
    model = model if model is not None else load_model(spec.model, spec.arch, spec.trust_checkpoint)
    data = data if data is not None else load_data(spec.data, "test", spec.limit)
    check_compatible(model, data)
    store = RunStore(out)
    store.check_or_write_manifest({
        "model": spec.model, "model_name": model.name, "model_fingerprint": model.fingerprint,
        "num_classes": model.num_classes, "data": spec.data, "data_name": data.name,
        "data_fingerprint": data.fingerprint, "n_samples": len(data), "seed": spec.seed,
        "spec": spec.to_dict(), "options": options, "versions": package_versions(),
        "device": str(model.device), "updated": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    temperature = fit_run_temperature(store, spec, model, data, calibration, progress)
    jobs = shard_jobs(tasks, store, len(data), data.num_classes, shard_size, spec.batch_size)
    metas = {t.key: {"suite": t.suite.name, "condition": t.condition.name, "params": t.condition.params,
                     "model": spec.model, "dataset": spec.data} for t in tasks}

    def merge_if_complete(key: str) -> None:
        names = [job.name for job in jobs[key]]
        if all(store.has_shard(key, name) for name in names):
            store.merge_shards(key, names, metas[key])

    unique = {job.key: job for task_jobs in jobs.values() for job in task_jobs}.values()
    todo = [replace(job, tasks=pending) for job in unique
            if (pending := tuple((k, c) for k, c in job.tasks if not store.has_shard(k, job.name)))]
    for key in jobs:
        merge_if_complete(key)  # a run killed between its last shard and the merge
    payload = Payload(f"{store.root.resolve()}:{model.fingerprint}", model, data, spec.seed, options, temperature,
                      spec.batch_size, str(store.root), spec.limit)
    with progress.bar(len(todo), "shards", "shard") as bar:
        def on_done(job: ShardJob, records: list[Records]) -> None:
            for (key, _), task_records in zip(job.tasks, records, strict=True):
                store.save_shard(key, job.name, task_records)
                merge_if_complete(key)
            bar.update()

        (executor or InProcessExecutor(progress)).run(payload, todo, on_done)
    return store


def aggregate(store: RunStore, progress: Progress = Progress()) -> pd.DataFrame:
    """The tidy metrics table of every task in the run dir (per-task metrics are cached with the temperature)."""
    manifest = store.read_json("manifest.json") or {}
    calibration = store.read_json(CALIBRATION)
    temperature = calibration["temperature"] if calibration else None
    rows: list[dict] = []
    by_suite: dict[str, list[dict]] = {}
    keys = store.task_keys()
    with progress.bar(len(keys), "metrics", "task") as bar:
        for key in keys:
            cache_path = store.root / "metrics" / f"{key}.json"
            cached = json.loads(cache_path.read_text()) if cache_path.is_file() else None
            meta = store.load_meta(key)
            if cached is None or (cached["temperature"], cached.get("version")) != (temperature, METRICS_CACHE_VERSION):
                seed_parts = (manifest.get("seed", 0), key)  # only then read the records
                computed = get_suite(meta["suite"]).metrics(store.load_task(key)[1], temperature, seed_parts)
                cached = {"temperature": temperature, "version": METRICS_CACHE_VERSION, "rows": computed}
                write_json(cache_path, cached)
            base = {"model": meta["model"], "dataset": meta["dataset"], "suite": meta["suite"],
                    "condition": meta["condition"], "params": json.dumps(meta["params"], sort_keys=True)}
            task_rows = [{**base, **r} for r in cached["rows"]]
            rows += task_rows
            by_suite.setdefault(meta["suite"], []).extend(task_rows)
            bar.update()
    for name, suite_rows in by_suite.items():
        frame = pd.DataFrame(suite_rows)
        first = suite_rows[0]
        rows += [{"model": first["model"], "dataset": first["dataset"], "suite": name, "params": "{}", **r}
                 for r in get_suite(name).summary(frame)]
    if calibration:
        rows.append({"model": manifest.get("model"), "dataset": manifest.get("data"), "suite": "calibration",
                     "condition": "val", "metric": "temperature", "value": temperature, "ci_low": np.nan,
                     "ci_high": np.nan, "n": calibration["n"], "params": "{}"})
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)

"""Plan tasks from an EvalSpec, run the unfinished ones, and aggregate every task into the metrics table."""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data import DataSource, load_data
from ..data.stream import set_workers
from ..device import cpu_setup
from ..errors import DataError, ModelError, RunError, SpecError
from ..metrics import bound_notice, fit_temperature, nll_at, temperature_at_bound
from ..metrics.conformal import ConformalFit
from ..models import Classifier, load_model
from ..progress import Progress
from ..records import Records
from ..registry import SUITES
from ..seeding import derive_seed
from ..suites import Condition, Suite, SuiteOption, get_suite
from .executors import Executor, InProcessExecutor
from .lock import run_lock
from .shards import Payload, ShardJob, group_shard_size, shard_ranges
from .spec import EvalSpec
from .store import CALIBRATION, MANIFEST, RunStore, read_meta, recorded_digest
from .task_metrics import task_metrics

METRIC_COLUMNS = ["model", "dataset", "suite", "condition", "metric", "value", "ci_low", "ci_high", "n", "params"]
CALIBRATION_ROWS = "calibration"  # the `suite` of the run's own rows (the fitted temperature), which no suite owns
METRICS_CACHE_VERSION = 6  # bump when suites' per-task metric rows change, so cached ones are recomputed once
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


def resolve_options(suites: list[Suite], given: dict[str, Any],
                    where: Callable[[SuiteOption], str] = lambda opt: opt.flag) -> dict[str, Any]:
    """Every selected suite's option defaults, overridden by `given` (read by SuiteOption.read); an error names
    the option as `where` says (default: its flag)."""
    declared = {opt.name: opt for suite in suites for opt in suite.options}
    unknown = set(given) - declared.keys()
    if unknown:
        raise SpecError(f"option(s) {', '.join(sorted(map(str, unknown)))} belong to no selected suite "
                        f"({', '.join(s.name for s in suites)}); select its suite (--suite, or suites: in a config) or drop it")
    resolved = {}
    for name, opt in declared.items():
        try:
            resolved[name] = opt.read(given.get(name))
        except SpecError as exc:
            raise SpecError(f"{where(opt)}: {exc}") from None
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


def calibration_set(spec: EvalSpec, model: Classifier, data: DataSource, calibration: DataSource | None,
                    progress: Progress) -> DataSource | None:
    """The held-out set the run's temperature is fitted on (None: raw only), loaded and checked on every run."""
    if calibration is None and spec.calibration_data not in (None, "none"):
        source = spec.data if spec.calibration_data == "auto" else spec.calibration_data
        try:
            calibration = load_data(source, "val")
        except DataError as exc:
            if spec.calibration_data != "auto":
                raise
            progress.note(f"notice: no held-out val split for temperature scaling ({exc}); "
                          "calibration is reported raw only (pass --calibration-data DATA)")
    if calibration is not None:
        check_compatible(model, calibration)
        check_disjoint(calibration, data, "fitting the temperature", progress)
    return calibration


def fit_run_calibration(store: RunStore, model: Classifier, model_fingerprint: str, calibration: DataSource | None,
                        alphas: list[float], batch_size: int, progress: Progress) -> float | None:
    """Fit the temperature and the conformal thresholds (at levels `alphas`) on `calibration`, kept in
    calibration.json (refit if damaged, of another set or of other levels); returns the temperature."""
    path = store.root / CALIBRATION
    if calibration is None:
        store.remove(path)  # one left by a failed start with a calibration set
        return None
    cached = store.read_json(CALIBRATION) if store.intact(path) else None
    if cached and (cached.get("model_fingerprint"), cached.get("data_fingerprint"),
                   (cached.get("conformal") or {}).get("alphas")) == \
            (model_fingerprint, calibration.fingerprint, list(alphas)):
        return cached["temperature"]
    logits = model.predict_stream(calibration.batches(batch_size))
    t = fit_temperature(logits, calibration.labels)
    bound = temperature_at_bound(logits, calibration.labels, t)
    if bound is not None:
        progress.note(bound_notice(bound, t))
    store.write_json(CALIBRATION, {
        "temperature": t, "n": len(calibration), "data": calibration.name, "data_fingerprint": calibration.fingerprint,
        "model_fingerprint": model_fingerprint,
        "nll_before": nll_at(logits, calibration.labels, 1.0), "nll_after": nll_at(logits, calibration.labels, t),
        "at_bound": bound, "method": "bounded scalar minimisation of NLL over log T in [0.01, 100]",
        "conformal": ConformalFit.fit(logits, calibration.labels, calibration.ids, alphas).to_dict()})
    return t


def run_manifest(inputs: RunInputs) -> dict[str, Any]:
    """What a run dir is of (store.IDENTITY) and how it was made."""
    spec, model, data, calibration = inputs.spec, inputs.model, inputs.data, inputs.calibration
    return {
        "model": spec.model, "model_name": model.name, "model_fingerprint": inputs.model_fingerprint,
        "num_classes": model.num_classes, "data": spec.data, "data_name": data.name,
        "data_index": data.index_fingerprint, "data_fingerprint": data.fingerprint, "n_samples": len(data),
        "seed": spec.seed,
        "calibration_data": calibration.name if calibration is not None else None,
        "calibration_fingerprint": calibration.fingerprint if calibration is not None else None,
        "spec": spec.to_dict(), "options": inputs.options, "versions": package_versions(), "cpu_setup": cpu_setup(),
        "device": str(model.device), "updated": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def task_identity(task: Task, spec: EvalSpec) -> dict[str, Any]:
    """What a task's records depend on beyond the run's identity: the batch size, where its suite says so."""
    return {"batch_size": spec.batch_size} if task.suite.batch_dependent else {}


def check_task_identity(store: RunStore, task: Task, identity: dict[str, Any], recorded: list[Path]) -> None:
    """Refuse to resume `task` from record files (`recorded`: its task file or shards) of another task identity."""
    for path in recorded:
        was = read_meta(path).get("identity", {})
        if was != identity:
            suite = task.suite.name
            raise RunError(f"{store.root} holds {suite} records computed with {_as_flags(was) or 'no recorded setting'}"
                           f" (this run: {_as_flags(identity) or 'none'}), and {suite} records depend on it; re-run "
                           "with the same setting or choose another --out directory")


def _as_flags(identity: dict[str, Any]) -> str:
    return " ".join(f"--{k.replace('_', '-')} {v}" for k, v in identity.items())


@dataclass(frozen=True)
class RunInputs:
    """Everything a run needs, loaded and checked; nothing is written yet."""

    spec: EvalSpec
    options: dict[str, Any]
    tasks: list[Task]
    model: Classifier
    model_fingerprint: str
    data: DataSource
    calibration: DataSource | None


def load_inputs(spec: EvalSpec, progress: Progress = Progress(), model: Classifier | None = None,
                data: DataSource | None = None, calibration: DataSource | None = None) -> RunInputs:
    """Load and check every input of `spec` (suite options, model, data, calibration set); touches no run dir."""
    options = resolve_options([get_suite(n) for n in spec.suites], spec.options)
    tasks = plan(spec, options)
    model = model if model is not None else load_model(spec.model, spec.arch, spec.trust_checkpoint, seed=spec.seed)
    data = data if data is not None else load_data(spec.data, "test", spec.limit)
    check_compatible(model, data)
    calibration = calibration_set(spec, model, data, calibration, progress)
    return RunInputs(spec, options, tasks, model, model.fingerprint, data, calibration)


def run_tasks(spec: EvalSpec, out: str | Path, progress: Progress = Progress(),
              model: Classifier | None = None, data: DataSource | None = None,
              calibration: DataSource | None = None, executor: Executor | None = None,
              shard_size: int | None = None) -> RunStore:
    """Run every unfinished shard of `spec` into the run dir `out`; finished shards and tasks are kept."""
    return run_inputs(load_inputs(spec, progress, model, data, calibration), out, progress, executor, shard_size)


def check_images_unchanged(store: RunStore, data: DataSource, finished: list[tuple[int, int]],
                           progress: Progress) -> None:
    """Refuse to resume when an image changed (file size or time, or pixels) under records already computed
    (`finished`: their [start, stop) ranges); images changed where nothing is finished only draw a notice."""
    before, now = store.read_samples(), data.sample_digests()
    if before is None or len(before) != len(now):
        return
    changed = np.flatnonzero(before != now)
    if not len(changed):
        return
    used = [i for i in changed if any(a <= i < b for a, b in finished)]
    if used:
        raise RunError(f"{len(used)} image(s) of {data.name} changed since the finished records of {store.root} were "
                       f"computed (e.g. {data.ids[used[0]]}); restore them or choose another --out directory")
    progress.note(f"notice: {len(changed)} image(s) of {data.name} changed since the run started (e.g. "
                  f"{data.ids[changed[0]]}); no finished record used them, so the run goes on")


def shard_jobs(tasks: list[Task], store: RunStore, n: int, num_classes: int, shard_size: int | None,
               batch_size: int) -> dict[str, list[ShardJob]]:
    """Task key -> the shard jobs covering it, for every unfinished task; a grouped suite's conditions share one job
    per shard (its default shard size keeps their logits under GROUP_BYTES)."""
    jobs: dict[str, list[ShardJob]] = {}
    for suite in dict.fromkeys(t.suite for t in tasks):
        ours = [t for t in tasks if t.suite is suite]
        size = shard_size or (group_shard_size(len(ours), num_classes, batch_size) if suite.grouped else None)
        ranges = shard_ranges(n, size, batch_size, suite.shardable)
        unfinished = [t for t in ours if not store.has_task(t.key)]
        for group in ([unfinished] if suite.grouped and unfinished else [[t] for t in unfinished]):
            for a, b in ranges:
                job = ShardJob(tuple((t.key, t.condition) for t in group), SUITES.get(suite.name).target, a, b)
                for t in group:
                    jobs.setdefault(t.key, []).append(job)
    return jobs


def run_inputs(inputs: RunInputs, out: str | Path, progress: Progress = Progress(), executor: Executor | None = None,
               shard_size: int | None = None) -> RunStore:
    """Run the unfinished shards of checked `inputs` into the run dir `out`, which this process holds meanwhile."""
    set_workers(inputs.spec.data_workers)
    with run_lock(Path(out), progress):
        return _run(inputs, RunStore(out, progress), progress, executor, shard_size)


def _run(inputs: RunInputs, store: RunStore, progress: Progress, executor: Executor | None,
         shard_size: int | None) -> RunStore:
    spec, tasks, model, data = inputs.spec, inputs.tasks, inputs.model, inputs.data
    manifest = run_manifest(inputs)
    store.check_identity(manifest)
    jobs = shard_jobs(tasks, store, len(data), data.num_classes, shard_size, spec.batch_size)
    schemas = {t.key: t.suite.record_schema for t in tasks}
    metas = {t.key: {"suite": t.suite.name, "condition": t.condition.name, "params": t.condition.params,
                     "model": spec.model, "dataset": spec.data, "identity": task_identity(t, spec)} for t in tasks}
    done = {(key, job.name) for key, task_jobs in jobs.items() for job in task_jobs if store.has_shard(key, job.name)}
    for t in tasks:
        recorded = [store.task_path(t.key)] if t.key not in jobs else \
            [store.shard_path(key, name) for key, name in done if key == t.key]
        check_task_identity(store, t, metas[t.key]["identity"], recorded)
    finished = [(0, len(data)) for t in tasks if t.key not in jobs] + \
        [(job.start, job.stop) for key, task_jobs in jobs.items() for job in task_jobs if (key, job.name) in done]
    check_images_unchanged(store, data, finished, progress)
    store.write_manifest(manifest)
    store.write_samples(data.sample_digests())
    temperature = fit_run_calibration(store, model, inputs.model_fingerprint, inputs.calibration,
                                      spec.conformal_alpha, spec.batch_size, progress)

    def merge_if_complete(key: str) -> None:
        if all((key, job.name) in done for job in jobs[key]):
            store.merge_shards(key, [job.name for job in jobs[key]], metas[key])

    unique = {job.key: job for task_jobs in jobs.values() for job in task_jobs}.values()
    todo = [replace(job, tasks=pending) for job in unique
            if (pending := tuple((k, c) for k, c in job.tasks if (k, job.name) not in done))]
    for key in jobs:
        merge_if_complete(key)  # a run killed between its last shard and the merge
    payload = Payload(f"{store.root.resolve()}:{inputs.model_fingerprint}", model, data, spec.seed, inputs.options,
                      temperature, spec.batch_size, str(store.root), spec.limit)
    with progress.bar(len(todo), "shards", "shard") as bar:
        def on_done(job: ShardJob, records: list[Records]) -> None:
            for (key, _), task_records in zip(job.tasks, records, strict=True):
                store.save_shard(key, job.name, metas[key], task_records, schemas[key])
                done.add((key, job.name))
                merge_if_complete(key)
            bar.update()

        (executor or InProcessExecutor(progress)).run(payload, todo, on_done)
    return store


def aggregate(store: RunStore, progress: Progress = Progress()) -> pd.DataFrame:
    """The tidy metrics table of every task in the run dir (per-task metrics are cached with the temperature and
    the digest of the task file they were computed from; without the rows' own `replicates`, which the gate
    recomputes, but with the `paired` ones a suite's summary combines)."""
    manifest = store.read_json(MANIFEST) or {}
    calibration = store.read_json(CALIBRATION)
    temperature = calibration["temperature"] if calibration else None
    conformal = (calibration or {}).get("conformal")
    rows: list[dict] = []
    by_suite: dict[str, list[dict]] = {}
    keys = store.task_keys()
    with progress.bar(len(keys), "metrics", "task") as bar:
        for key in keys:
            cache_path = store.root / "metrics" / f"{key}.json"
            meta = store.load_meta(key)
            source = (temperature, METRICS_CACHE_VERSION, recorded_digest(store.task_path(key)))
            cached = store.read_json(cache_path) if store.intact(cache_path) else None
            if cached is None or (cached.get("temperature"), cached.get("version"), cached.get("task"),
                                  cached.get("conformal")) != (*source, conformal):
                seed_parts = (manifest.get("seed", 0), key)  # only then read the records
                records = store.load_task(key)[1]
                computed = task_metrics(meta["suite"], records, temperature, conformal, seed_parts)
                cached = {"temperature": temperature, "version": METRICS_CACHE_VERSION, "task": source[2],
                          "conformal": conformal,
                          "rows": [{k: v for k, v in r.items() if k != "replicates"} for r in computed]}
                store.write_json(cache_path, cached)
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
        rows += [{"model": manifest.get("model"), "dataset": manifest.get("data"), "suite": CALIBRATION_ROWS,
                  "condition": "val", "metric": metric, "value": value, "ci_low": np.nan, "ci_high": np.nan,
                  "n": calibration["n"], "params": "{}"}
                 for metric, value in (("temperature", temperature),
                                       ("flag_temperature_at_bound", float(calibration.get("at_bound") is not None)))]
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)

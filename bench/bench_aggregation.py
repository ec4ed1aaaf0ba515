"""Aggregation of one corruption task (every calibration metric raw and temperature-scaled with bootstrap intervals,
B = 1000, plus the summary's paired replicates): this package against the dense-weights implementation it replaced
(tests/bootstrap_reference.py), on synthetic logits at N = 2,000 and 20,000 with K = 10 and 1,000 classes: seconds,
peak traced memory and the largest interval difference; one OOD task likewise. Then a real fast corruption sweep
over 20,000 synthetic 32-px images through builtin:digits-cnn, to set the aggregation against the sweep's wall time."""
from __future__ import annotations

import importlib
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from robustbench_local.corruptions.summary import SUMMARY_KEY, paired_rows
from robustbench_local.ood.metrics import ood_metric_rows
from threadpoolctl import threadpool_limits

from robustbench_local import evaluate, load_data
from robustbench_local.data import DataSource
from robustbench_local.metrics import N_BOOT, classification_metrics, predictions
from robustbench_local.records import Records, classification_records
from robustbench_local.runner import aggregate
from robustbench_local.runner.store import RunStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
reference = importlib.import_module("bootstrap_reference")

TEMPERATURE, SEED, KEY = 1.3, 0, "corruptions/contrast/3"
SWEEP_N, SWEEP_CORRUPTIONS, SWEEP_SEVERITY, FULL_SWEEP = 20_000, "gaussian_noise,jpeg_compression", 3, 95


def synthetic(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float32 logits of a classifier right about 70% of the time, labels, and sample ids stored out of order."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) * 1.5
    logits[np.arange(n), labels] += rng.normal(4.0, 2.5, n)
    return logits.astype(np.float32), labels, rng.permutation(n)


def new_task(logits: np.ndarray, labels: np.ndarray, records: Records, n_boot: int) -> dict[str, np.ndarray]:
    variants = predictions(logits, labels, TEMPERATURE)
    rows = paired_rows(classification_metrics(variants, (SEED, KEY), n_boot), records, variants, SEED, n_boot)
    return {r["metric"]: np.r_[r["value"], r["ci_low"], r["ci_high"], r.get("paired", [])] for r in rows}


def old_task(logits: np.ndarray, labels: np.ndarray, ids: np.ndarray, n_boot: int) -> dict[str, np.ndarray]:
    intervals = reference.classification_metrics(logits, labels, TEMPERATURE, (SEED, KEY), n_boot)
    paired = reference.paired(logits, labels, ids, TEMPERATURE, SEED, SUMMARY_KEY, n_boot)
    return {name: np.r_[interval, paired.get(name, [])] for name, interval in intervals.items()}


def timed(fn, *args) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def peak_mib(fn, *args) -> float:
    tracemalloc.start()
    fn(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def largest_difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    assert a.keys() == b.keys()
    return max(float(np.max(np.abs(a[m] - b[m]))) for m in a)


def synthetic_cases() -> dict[int, float]:
    """Print old vs new per case; return the old seconds per task at K = 10 by N."""
    old_seconds = {}
    for n in (2_000, 20_000):
        for k in (10, 1_000):
            logits, labels, ids = synthetic(n, k)
            new_args, old_args = (logits, labels, classification_records(logits, labels, ids)), (logits, labels, ids)
            old_boot = N_BOOT if n * k < 20_000_000 else 100  # the dense classwise ECE at 20,000 x 1,000: ~2 min
            new_s, new = timed(new_task, *new_args, N_BOOT)
            new_mib = peak_mib(new_task, *new_args, N_BOOT)
            old_s, old = timed(old_task, *old_args, old_boot)
            old_s *= N_BOOT / old_boot
            old_mib = peak_mib(old_task, *old_args, old_boot)  # its peak is one 100-replicate chunk's, whatever B
            if old_boot != N_BOOT:
                new = new_task(*new_args, old_boot)
            if k == 10:
                old_seconds[n] = old_s
            note = f" (old timed on {old_boot} replicates, x{N_BOOT // old_boot})" if old_boot != N_BOOT else ""
            print(f"  N={n:>6} K={k:>5}  dense {old_s:7.2f} s {old_mib:7.1f} MiB | chunked {new_s:6.2f} s "
                  f"{new_mib:6.1f} MiB | {old_s / new_s:5.1f}x faster, memory /{old_mib / new_mib:4.1f} | largest "
                  f"interval or replicate difference {largest_difference(new, old):.1e}{note}", flush=True)
    return old_seconds


def ood_case(n: int = 20_000) -> None:
    """One OOD task (8 metrics, ID and OOD resampled apart): both ways, and whether every number is the same."""
    rng = np.random.default_rng(2)
    is_ood = rng.permutation(np.r_[np.zeros(n // 2, bool), np.ones(n - n // 2, bool)])
    score = rng.normal(size=n) + is_ood
    seeds = ((SEED, "ood-id"), (SEED, "ood/textures"))
    new_s, new = timed(ood_metric_rows, score, is_ood, *seeds)
    old_s, old = timed(reference.ood_rows, score, is_ood, *seeds)
    same = all((r["value"], r["ci_low"], r["ci_high"], r["replicates"]) == old[r["metric"]] for r in new)
    print(f"  OOD task, N={n} (half OOD): dense {old_s:6.2f} s | chunked {new_s:6.2f} s | {old_s / new_s:4.1f}x faster | "
          f"values, intervals and stored replicates identical: {same}", flush=True)


def sweep(old_per_task: float) -> None:
    """A fast corruption sweep over SWEEP_N synthetic images, then its aggregation timed again alone from the records
    (metric caches removed), with the process's BLAS threads and with one."""
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (SWEEP_N, 32, 32, 3), dtype=np.uint8)
    data = DataSource.from_arrays(images, rng.integers(0, 10, SWEEP_N), np.array([f"s{i:05d}" for i in range(SWEEP_N)]),
                                  10, "synthetic-32px")
    calibration = load_data("builtin:digits", "val")
    with tempfile.TemporaryDirectory(prefix="rbl-bench-") as out:
        total, run = timed(lambda: evaluate("builtin:digits-cnn", data, suites=("corruptions",), out=out,
                                            calibration_data=calibration, corruptions=SWEEP_CORRUPTIONS,
                                            severities=str(SWEEP_SEVERITY)))
        temperature, store = run.temperature, RunStore(out)
        tasks = len(store.task_keys())
        seconds = {}
        for threads in (None, 1):
            for cached in (Path(out) / "metrics").glob("*.json"):
                cached.unlink()
            with threadpool_limits(threads, user_api="blas"):
                seconds[threads], _ = timed(aggregate, store)
    per_condition = (total - seconds[None]) / tasks
    print(f"  evaluate(): {total:.1f} s for {tasks} tasks (clean + {SWEEP_CORRUPTIONS} at severity {SWEEP_SEVERITY}, "
          f"temperature {temperature:.2f}), of which aggregate() {seconds[None]:.1f} s; the sweep alone "
          f"{per_condition:.1f} s per condition")
    for threads, label in ((None, "the process's BLAS threads"), (1, "one BLAS thread")):
        per_task = seconds[threads] / tasks
        print(f"  aggregation with {label}: {per_task:.2f} s per task = {100 * per_task / per_condition:.1f}% of the "
              f"sweep's time per condition; for {FULL_SWEEP} conditions {FULL_SWEEP * per_task / 60:.1f} min against "
              f"the sweep's {FULL_SWEEP * per_condition / 60:.0f} min")
    print(f"  dense weights (one BLAS thread, synthetic task above): {old_per_task:.2f} s per task = "
          f"{100 * old_per_task / per_condition:.0f}%, {FULL_SWEEP * old_per_task / 60:.1f} min for {FULL_SWEEP}")


def main() -> None:
    print(f"one corruption task's aggregation: 13 metrics with intervals + 3 paired replicate sets, B = {N_BOOT}, one "
          f"BLAS thread on both sides (threaded BLAS stalls when other work shares the cores); load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with threadpool_limits(1, user_api="blas"):
        old_seconds = synthetic_cases()
        ood_case()
    print(f"fast corruption sweep, builtin:digits-cnn, {SWEEP_N} synthetic 32-px images:")
    sweep(old_seconds[SWEEP_N])

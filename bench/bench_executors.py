"""Scale-out: a corruption sweep (reference backend: CPU-bound numpy) on 1 worker vs 2 local workers, and Ray's
overhead against the process pool.

All three runs compute the same records (checked); the ratios are measured side by side in this run.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from threadpoolctl import threadpool_limits

import robustbench_local as rbl
from robustbench_local.runner.executors import InProcessExecutor, PoolExecutor, RayExecutor

SWEEP = {"corruptions": "all", "severities": "1-5", "corruption_workers": "0", "backend": "reference"}


def timed(executor, root: Path) -> tuple[float, pd.DataFrame]:
    start = time.perf_counter()
    run = rbl.evaluate("builtin:digits-cnn", "builtin:digits", ["corruptions"], out=root, executor=executor,
                       shard_size=64, batch_size=32, **SWEEP)
    seconds = time.perf_counter() - start
    return seconds, run.records.sort_values(["condition", "sample_id"]).reset_index(drop=True)


def main() -> None:
    import ray

    root = Path(tempfile.mkdtemp(prefix="rbl-bench-exec-"))
    try:
        threads = torch.get_num_threads()
        with threadpool_limits(1):  # one worker = one core (torch and BLAS), like each pool worker
            torch.set_num_threads(1)
            one, ref = timed(InProcessExecutor(), root / "one")
        torch.set_num_threads(threads)
        two, pool = timed(PoolExecutor(2), root / "pool")
        ray_s, on_ray = timed(RayExecutor(num_cpus=2), root / "ray")
        ray.shutdown()
        pd.testing.assert_frame_equal(ref, pool)
        pd.testing.assert_frame_equal(ref, on_ray)
        n = len(ref)
        print(f"corruption sweep ({SWEEP['corruptions']} x severities {SWEEP['severities']}, {n} corrupted images, "
              "builtin:digits-cnn): records identical on all executors")
        print(f"  in-process, 1 core   : {one:7.1f} s  ({n / one:6.0f} img/s)")
        print(f"  process pool, 2      : {two:7.1f} s  ({n / two:6.0f} img/s)  speed-up x{one / two:.2f}")
        print(f"  Ray (local, 2 CPUs)  : {ray_s:7.1f} s  ({n / ray_s:6.0f} img/s)  overhead vs pool x{ray_s / two:.2f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Executors: in-process, process pool and Ray give bit-identical records, whatever the shard size, at one thread
count; another thread count moves float columns in the last bits only."""
from __future__ import annotations

import pandas as pd
import pytest
import torch
import toy_suite

import robustbench_local as rbl
from robustbench_local import registry
from robustbench_local.errors import SpecError
from robustbench_local.runner.executors import PoolExecutor, RayExecutor, make_executor
from robustbench_local.runner.shards import shard_ranges

pytestmark = pytest.mark.numerics  # results depend on float kernels: `make test` reruns them per CPU capability

SUITES = ["clean", "toy"]


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(registry.SUITES.added, "toy", toy_suite.ENTRY)


def records(run) -> pd.DataFrame:
    return run.records.sort_values(["suite", "condition", "sample_id"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(registry.SUITES.added, "toy", toy_suite.ENTRY)
        run = rbl.evaluate("builtin:digits-cnn", "builtin:digits", SUITES, out=tmp_path_factory.mktemp("ref"),
                           limit=100, batch_size=16)
        return records(run), run.metrics


def test_shard_ranges_are_batch_aligned():
    assert shard_ranges(100, None, 16) == [(0, 100)]
    assert shard_ranges(100, 20, 16) == [(0, 32), (32, 64), (64, 96), (96, 100)]
    assert shard_ranges(100, 20, 16, shardable=False) == [(0, 100)]


def test_in_process_shards_match_one_shard(tmp_path, toy, reference):
    run = rbl.evaluate("builtin:digits-cnn", "builtin:digits", SUITES, out=tmp_path, limit=100, batch_size=16,
                       shard_size=30)
    pd.testing.assert_frame_equal(records(run), reference[0], check_exact=True)
    pd.testing.assert_frame_equal(run.metrics, reference[1], check_exact=True)


def test_process_pool_matches_and_survives_a_dead_worker(tmp_path, toy, reference, monkeypatch):
    monkeypatch.setenv("RBL_TOY_KILL_ONCE", str(tmp_path / "killed"))
    run = rbl.evaluate("builtin:digits-cnn", "builtin:digits", SUITES, out=tmp_path / "run", limit=100,
                       batch_size=16, shard_size=48, executor=PoolExecutor(2))
    assert (tmp_path / "killed").exists()  # a worker really died mid-shard
    pd.testing.assert_frame_equal(records(run), reference[0], check_exact=True)
    pd.testing.assert_frame_equal(run.metrics, reference[1], check_exact=True)
    assert not (tmp_path / "run" / "shards").exists() or not any((tmp_path / "run" / "shards").iterdir())


def test_ray_matches(tmp_path, toy, reference):
    ray = pytest.importorskip("ray", reason="the ray extra is installed by `make test`")
    try:
        run = rbl.evaluate("builtin:digits-cnn", "builtin:digits", SUITES, out=tmp_path, limit=100, batch_size=16,
                           shard_size=32, executor=RayExecutor(num_cpus=2))
    finally:
        ray.shutdown()
    pd.testing.assert_frame_equal(records(run), reference[0], check_exact=True)
    pd.testing.assert_frame_equal(run.metrics, reference[1], check_exact=True)


def test_another_thread_count_moves_floats_in_the_last_bits_only(tmp_path, toy, reference):
    """What README promises across thread counts (and CPUs): the same predictions, float columns within 1e-5."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1 if threads > 1 else 2)
    try:
        run = rbl.evaluate("builtin:digits-cnn", "builtin:digits", SUITES, out=tmp_path, limit=100, batch_size=16)
    finally:
        torch.set_num_threads(threads)
    other, ref = (r.drop(columns="threads") for r in (records(run), reference[0]))
    assert other.pred.equals(ref.pred) and other.correct.equals(ref.correct)
    pd.testing.assert_frame_equal(other, ref, check_exact=False, rtol=1e-5, atol=1e-7)


def test_make_executor():
    assert repr(make_executor("inprocess", 2)) == "PoolExecutor(workers=2, retries=3)"
    with pytest.raises(SpecError, match="unknown executor"):
        make_executor("slurm")


def test_real_suites_are_executor_independent(tmp_path):
    """An eps sweep (which reuses smaller-eps breaks) and a corruption sweep: pool shards == one process."""
    options = {"attack": "pgd?steps=5", "eps": "2/255,8/255,0.1", "corruptions": "gaussian_noise,fog",
               "severities": "1,5", "corruption_workers": "0"}
    runs = [rbl.evaluate("builtin:digits-cnn", "builtin:digits", ["attacks", "corruptions"], out=tmp_path / name,
                         limit=64, batch_size=16, executor=executor, shard_size=shard, **options)
            for name, executor, shard in (("one", None, None), ("pool", PoolExecutor(2), 32))]
    pd.testing.assert_frame_equal(records(runs[0]), records(runs[1]), check_exact=True)
    robust = runs[0].metrics.query("metric == 'robust_acc'").sort_values("value", ascending=False)
    assert list(robust.condition) == ["pgd?steps=5:Linf:2/255", "pgd?steps=5:Linf:8/255", "pgd?steps=5:Linf:0.1"]

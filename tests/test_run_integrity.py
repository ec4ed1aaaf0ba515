"""Integrity of a run directory: one process at a time (a lock), every cached file checked against its recorded
digest, everything that changes records part of the run's identity, failed starts and read-only folders handled
in one line, and randomly initialised models built from the run seed."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import toy_suite
from click.testing import CliRunner
from foundation_helpers import CliOutcome, assert_one_line_error

import robustbench_local as rbl
from robustbench_local import load_data, load_model, registry, suites
from robustbench_local.cli import cli
from robustbench_local.errors import RunError
from robustbench_local.results import load_run
from robustbench_local.runner.store import RunStore

TESTS = Path(__file__).parent
RUN = ["evaluate", "builtin:digits-cnn", "--data", "builtin:digits", "--limit", "40"]
OOD = ["--suite", "clean,ood", "--ood-data", "builtin:ood-noise-uniform", "--detectors", "msp_ts,knn",
       "--ood-limit", "20", "--ood-fit-limit", "60"]


def rbl_cli(*args: str) -> CliOutcome:
    """`rbl ARGS` in this process, notices on (a traceback fails the test)."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return CliOutcome(result.exit_code, result.stdout, result.stderr)


def stderr_lines(outcome: CliOutcome) -> list[str]:
    return [line for line in outcome.stderr.splitlines() if line.strip()]


def records(out: Path) -> pd.DataFrame:
    return load_run(out).records.sort_values(["suite", "condition", "sample_id"]).reset_index(drop=True)


def metrics(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "metrics.csv")


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(registry.SUITES.added, "toy", toy_suite.ENTRY)
    return toy_suite.SUITE


# --- one process per run directory -------------------------------------------------------------------------

TOY_RUN = ["evaluate", "builtin:digits-cnn", "--data", "builtin:digits", "--suite", "clean,toy", "--limit", "30",
           "--scales", "1", "--calibration-data", "none"]
LAUNCH = ("import sys; sys.path.insert(0, {tests!r}); import toy_suite; from robustbench_local.registry import SUITES; "
          "SUITES.register(toy_suite.ENTRY); from robustbench_local.cli import main; sys.argv[0] = 'rbl'; main()")


def spawn_rbl(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """A real `rbl ARGS` process (the toy suite registered)."""
    return subprocess.Popen([sys.executable, "-c", LAUNCH.format(tests=str(TESTS)), *args],
                            env={**os.environ, "RBL_DEVICE": "cpu", **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, process: subprocess.Popen) -> None:
    while not path.exists():
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)


def test_a_second_process_on_the_same_out_is_refused(tmp_path):
    hold = tmp_path / "hold"
    first = spawn_rbl(*TOY_RUN, "--out", str(tmp_path / "run"), env={"RBL_TOY_HOLD": str(hold)})
    try:
        wait_for(Path(f"{hold}.started"), first)  # the first process is inside a task
        second = spawn_rbl(*TOY_RUN, "--out", str(tmp_path / "run"))
        out, err = second.communicate()
        assert_one_line_error(CliOutcome(second.returncode, out, err), "in use", f"pid {first.pid}")
        assert not (tmp_path / "run" / "metrics.csv").exists()
    finally:
        hold.touch()
        out, err = first.communicate()
    assert first.returncode == 0, err
    assert len(metrics(tmp_path / "run").query("suite == 'toy'")) > 0


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    hold = tmp_path / "hold"
    first = spawn_rbl(*TOY_RUN, "--out", str(tmp_path / "run"), env={"RBL_TOY_HOLD": str(hold)})
    wait_for(Path(f"{hold}.started"), first)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    second = spawn_rbl(*TOY_RUN, "--out", str(tmp_path / "run"))
    out, err = second.communicate()
    assert second.returncode == 0, err
    assert f"pid {first.pid}" in err and "no longer running" in err
    assert "wrote" in out


# --- digests of every cached file --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("integrity") / "run"
    outcome = rbl_cli("--quiet", *RUN, *OOD, "--out", str(out))
    assert outcome.exit_code == 0, outcome.stderr
    return out


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def edit(path: Path) -> None:
    """Change one value the way a person (or a buggy script) would, leaving a well-formed file."""
    if path.suffix == ".json":
        content = json.loads(path.read_text())
        if "temperature" in content and "rows" not in content:
            content["temperature"] *= 2
        else:
            for row in content["rows"]:
                row["value"] = 0.123
        path.write_text(json.dumps(content))
    else:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        name = next(k for k, v in arrays.items() if v.dtype.kind == "f")
        arrays[name] = arrays[name] + 1
        np.savez(path, **arrays)


CACHED = {"task": "tasks/clean--*.npz", "metrics": "metrics/clean--*.json", "calibration": "calibration.json",
          "ood_fit": "ood_fit/knn-*.npz"}


@pytest.mark.parametrize("damage", [truncate, flip, edit], ids=["truncate", "flip", "edit"])
@pytest.mark.parametrize("kind", list(CACHED))
def test_a_damaged_cached_file_is_recomputed_with_a_notice(reference, tmp_path, kind, damage):
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    path, = out.glob(CACHED[kind])
    if kind == "ood_fit":  # the fitted state is read when an OOD task that needs it runs
        for stale in [*out.glob("tasks/ood--*knn*"), *out.glob("metrics/ood--*knn*")]:
            stale.unlink()
    damage(path)
    outcome = rbl_cli(*RUN, *OOD, "--out", str(out))
    assert outcome.exit_code == 0, outcome.stderr
    lines = stderr_lines(outcome)
    assert len(lines) == 1 and path.name in lines[0] and "recomput" in lines[0], lines
    pd.testing.assert_frame_equal(metrics(out), metrics(reference))
    pd.testing.assert_frame_equal(records(out), records(reference))


@pytest.mark.parametrize("damage", [truncate, flip, edit], ids=["truncate", "flip", "edit"])
def test_readers_refuse_a_damaged_file_in_one_line(reference, tmp_path, damage):
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    for pattern in ("tasks/clean--*.npz", "calibration.json"):
        damage(next(out.glob(pattern)))
    with pytest.raises(RunError, match=r"clean--.*recorded digest.*re-run"):
        _ = load_run(out).records
    with pytest.raises(RunError, match=r"calibration.json.*recorded digest"):
        _ = load_run(out).temperature


def test_a_damaged_manifest_is_refused_in_one_line(reference, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    truncate(out / "manifest.json")
    assert_one_line_error(rbl_cli(*RUN, *OOD, "--out", str(out)), "manifest.json", "recorded digest")


# --- the identity of a run covers everything that changes records ------------------------------------------

ATTACK = ["evaluate", "builtin:digits-cnn", "--data", "builtin:digits", "--suite", "attacks", "--attack",
          "pgd?steps=2", "--eps", "0,8/255", "--limit", "24", "--calibration-data", "none"]


def test_no_built_in_suite_depends_on_the_batch_size():
    """Attacks draw each point's noise from its own stream (test_attacks_engine checks batch sizes 32 and 256)."""
    assert not any(suites.get_suite(name).batch_dependent for name in ("clean", "attacks", "corruptions", "ood"))


def test_a_resume_with_another_batch_size_is_refused_for_batch_dependent_tasks(tmp_path, monkeypatch):
    monkeypatch.setattr(suites.get_suite("attacks"), "batch_dependent", True, raising=False)
    out = str(tmp_path / "run")
    assert rbl_cli("--quiet", *ATTACK, "--batch-size", "16", "--out", out).exit_code == 0
    assert_one_line_error(rbl_cli(*ATTACK, "--batch-size", "8", "--out", out), "--batch-size 16", "attacks")
    assert rbl_cli("--quiet", *ATTACK, "--batch-size", "16", "--out", out).exit_code == 0


def test_shards_of_another_batch_size_are_refused(tmp_path, toy, monkeypatch):
    monkeypatch.setattr(type(toy), "batch_dependent", True, raising=False)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:  # killed after the first shards, before any task file is merged
        patch.setattr(RunStore, "merge_shards", killed)
        with pytest.raises(KeyboardInterrupt):
            rbl.evaluate("builtin:digits-cnn", "builtin:digits", ["toy"], out=tmp_path, limit=64, batch_size=16,
                         shard_size=32, scales="1", calibration_data=None)
    assert list((tmp_path / "shards").glob("*/*.npz"))
    with pytest.raises(RunError, match="--batch-size 16"):
        rbl.evaluate("builtin:digits-cnn", "builtin:digits", ["toy"], out=tmp_path, limit=64, batch_size=8,
                     shard_size=32, scales="1", calibration_data=None)


def test_a_batch_independent_run_resumes_with_another_batch_size(tmp_path):
    out = tmp_path / "run"
    rbl.evaluate("builtin:digits-cnn", "builtin:digits", out=out, limit=30, batch_size=16)
    before = {p: p.stat().st_mtime_ns for p in (out / "tasks").iterdir()}
    rbl.evaluate("builtin:digits-cnn", "builtin:digits", out=out, limit=30, batch_size=7)
    assert {p: p.stat().st_mtime_ns for p in (out / "tasks").iterdir()} == before


def write_val_npz(path: Path, start: int, n: int = 120, num_classes: int | None = None) -> str:
    val = load_data("builtin:digits", "val")
    extra = {"num_classes": np.array(num_classes)} if num_classes else {}
    y = val.labels[start:start + n] % (num_classes or 10)
    np.savez(path, x_val=val.images[start:start + n], y_val=y, **extra)
    return f"npz:{path}"


def test_calibration_data_is_validated_on_resume(tmp_path):
    out = str(tmp_path / "run")
    assert rbl_cli("--quiet", *RUN, "--out", out).exit_code == 0
    assert_one_line_error(rbl_cli(*RUN, "--out", out, "--calibration-data", "npz:/no/such.npz"), "/no/such.npz")


def test_other_calibration_data_on_resume_is_refused(tmp_path):
    out = str(tmp_path / "run")
    first, other = write_val_npz(tmp_path / "a.npz", 0), write_val_npz(tmp_path / "b.npz", 120)
    assert rbl_cli("--quiet", *RUN, "--out", out, "--calibration-data", first).exit_code == 0
    temperature = load_run(out).temperature
    assert_one_line_error(rbl_cli(*RUN, "--out", out, "--calibration-data", other), "calibration")
    assert_one_line_error(rbl_cli(*RUN, "--out", out), "calibration")  # auto: the val split of builtin:digits
    assert rbl_cli("--quiet", *RUN, "--out", out, "--calibration-data", first).exit_code == 0
    assert load_run(out).temperature == temperature


# --- failed starts and read-only folders -------------------------------------------------------------------

def test_a_failed_start_leaves_the_folder_reusable(tmp_path):
    out = str(tmp_path / "run")
    failed = rbl_cli("--quiet", "evaluate", "torchvision:resnet18?num_classes=10", "--data", "builtin:digits",
                     "--limit", "20", "--suite", "ood", "--ood-data", "npz:/no/such.npz", "--out", out)
    assert_one_line_error(failed, "/no/such.npz")
    assert rbl_cli("--quiet", *RUN, "--out", out).exit_code == 0  # the corrected command: another model
    assert rbl_cli("--quiet", *RUN, "--out", str(tmp_path / "fresh")).exit_code == 0
    pd.testing.assert_frame_equal(metrics(Path(out)), metrics(tmp_path / "fresh"))


def test_bad_calibration_data_leaves_no_run_dir(tmp_path):
    three = write_val_npz(tmp_path / "three.npz", 0, num_classes=3)
    failed = rbl_cli(*RUN, "--out", str(tmp_path / "run"), "--calibration-data", three)
    assert_one_line_error(failed, "classes")
    assert not (tmp_path / "run").exists()


def test_out_under_a_regular_file_is_one_line(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    assert_one_line_error(rbl_cli(*RUN, "--out", str(tmp_path / "file" / "run")), "file/run", "--out")


def rbl_read_only(root: Path, *args: str) -> CliOutcome:
    """`rbl ARGS` in a process for which `root` is read-only: a read-only bind mount when the tests run as root
    (which permissions do not stop), else the permission bits."""
    command = [sys.executable, "-c", "from robustbench_local.cli import main; main()", *args]
    if os.geteuid() == 0:
        if shutil.which("unshare") is None:
            pytest.skip("needs unshare(1) to make a read-only mount as root")
        command = ["unshare", "--mount", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"', str(root), *command]
    for path in [*root.rglob("*"), root]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    result = subprocess.run(command, env={**os.environ, "RBL_DEVICE": "cpu"}, capture_output=True, text=True)
    if "mount" in result.stderr and "Traceback" not in result.stderr:
        pytest.skip(f"cannot make a read-only mount here: {result.stderr.strip()}")
    return CliOutcome(result.returncode, result.stdout, result.stderr)


@pytest.fixture
def read_only_root(tmp_path):
    yield tmp_path / "ro"
    for path in [tmp_path / "ro", *(tmp_path / "ro").rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)


def snapshot(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_out_in_a_read_only_directory_is_one_line(read_only_root):
    read_only_root.mkdir()
    outcome = rbl_read_only(read_only_root, *RUN, "--out", str(read_only_root / "run"))
    assert_one_line_error(outcome, str(read_only_root / "run"), "--out")


def test_a_finished_read_only_run_is_printed_without_writing(read_only_root):
    out = read_only_root / "run"
    assert rbl_cli("--quiet", *RUN, "--out", str(out)).exit_code == 0
    before = snapshot(out)
    outcome = rbl_read_only(read_only_root, "--quiet", *RUN, "--out", str(out))
    assert outcome.exit_code == 0, outcome.stderr
    assert "acc" in outcome.stdout and outcome.stderr == ""
    assert snapshot(out) == before


def test_a_read_only_run_that_needs_writing_says_so(read_only_root):
    out = read_only_root / "run"
    assert rbl_cli("--quiet", *RUN, "--out", str(out)).exit_code == 0
    edit(next(out.glob("metrics/*.json")))
    outcome = rbl_read_only(read_only_root, "--quiet", *RUN, "--out", str(out))
    assert_one_line_error(outcome, "cannot write", str(out))


# --- random initialisation from the run seed ---------------------------------------------------------------

@pytest.mark.parametrize("spec", ["builtin:digits-cnn?weights=none", "torchvision:resnet18?num_classes=10"])
def test_re_running_a_random_init_model_resumes(tmp_path, spec):
    args = ["evaluate", spec, "--data", "builtin:digits", "--limit", "20", "--batch-size", "20",
            "--out", str(tmp_path)]
    assert rbl_cli("--quiet", *args).exit_code == 0
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "tasks").iterdir()}
    again = rbl_cli(*args)
    assert again.exit_code == 0, again.stderr
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "tasks").iterdir()} == before


def test_random_init_follows_the_seed_and_leaves_the_global_generator_alone():
    state = torch.random.get_rng_state()
    a, b, c = (load_model("builtin:digits-cnn?weights=none", seed=s) for s in (1, 1, 2))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert a.fingerprint == b.fingerprint != c.fingerprint

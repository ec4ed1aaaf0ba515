"""Progress off a terminal: plain lines at a steady interval (shards done/total, elapsed, time left); --quiet: none."""
from __future__ import annotations

import io
import re

import pytest
from click.testing import CliRunner

from robustbench_local.cli import cli
from robustbench_local.errors import SpecError
from robustbench_local.progress import LogLines, Progress, log_interval

LINE = re.compile(r"^shards: (\d+)/4 shard, elapsed \d+:\d\d:\d\d(, ~\d+:\d\d:\d\d left)?$")


def evaluate(tmp_path, *flags):
    args = [*flags, "evaluate", "builtin:digits-cnn", "--data", "builtin:digits", "--limit", "64", "--batch-size",
            "16", "--shard-size", "16", "--out", str(tmp_path / "run")]
    return CliRunner().invoke(cli, args, env={"RBL_PROGRESS_INTERVAL": "0"})


def test_a_captured_run_logs_shard_lines(tmp_path):
    result = evaluate(tmp_path)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("shards:")]
    assert [LINE.match(line).group(1) for line in lines] == ["1", "2", "3", "4"]  # interval 0: every update
    assert lines[0].endswith("left") and not lines[-1].endswith("left")


def test_quiet_silences_the_lines(tmp_path):
    result = evaluate(tmp_path, "--quiet")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


def test_lines_wait_for_the_interval():
    stream = io.StringIO()
    with LogLines(10, "work", "it", 3600.0, stream) as bar:
        for _ in range(10):
            bar.update()
    assert stream.getvalue() == ""  # shorter than the interval: a log stays clean


def test_a_log_ends_on_the_final_count(monkeypatch):
    now = [0.0]
    monkeypatch.setattr("robustbench_local.progress.time.monotonic", lambda: now[0])
    stream = io.StringIO()
    with LogLines(4, "shards", "shard", 30.0, stream) as bar:
        now[0] = 40.0
        bar.update()  # a line
        now[0] = 50.0
        bar.update(3)  # too soon after it: the closing line says where it ended
    assert stream.getvalue().splitlines() == ["shards: 1/4 shard, elapsed 0:00:40, ~0:02:00 left",
                                              "shards: 4/4 shard, elapsed 0:00:50"]


def test_interval_from_the_environment(monkeypatch):
    monkeypatch.delenv("RBL_PROGRESS_INTERVAL", raising=False)
    assert log_interval() == 30.0
    monkeypatch.setenv("RBL_PROGRESS_INTERVAL", "5")
    assert log_interval() == 5.0
    monkeypatch.setenv("RBL_PROGRESS_INTERVAL", "soon")
    with pytest.raises(SpecError, match="RBL_PROGRESS_INTERVAL='soon' must be a number of seconds >= 0"):
        Progress().bar(3, "x")

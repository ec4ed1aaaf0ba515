"""The SQLite leaderboard: add/show round trip, idempotent adds, schema version."""
from __future__ import annotations

import sqlite3

import pytest
from click.testing import CliRunner

import robustbench_local as rbl
from robustbench_local import leaderboard as lb
from robustbench_local.cli import cli
from robustbench_local.errors import RunError


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("lb")
    return (rbl.evaluate("builtin:digits-cnn", "builtin:digits", out=root / "good", limit=60),
            rbl.evaluate("builtin:digits-cnn?weights=none", "builtin:digits", out=root / "bad", limit=60))


def test_add_show_round_trip_and_idempotence(two_runs, tmp_path):
    db = tmp_path / "lb.sqlite"
    for _ in range(2):
        for run in two_runs:
            assert CliRunner().invoke(cli, ["leaderboard", "add", str(run.root), "--db", str(db)]).exit_code == 0
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 2
    assert con.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == sum(len(r.metrics) for r in two_runs)
    frame = lb.table(lb.connect(db), suite="clean", metrics=("acc",), sort="acc")
    assert list(frame.model) == ["builtin:digits-cnn", "builtin:digits-cnn?weights=none"]
    assert frame["clean:clean:acc"].iloc[0] == pytest.approx(two_runs[0].metric("acc", "clean"))
    manifest = con.execute("SELECT manifest FROM runs WHERE model = 'builtin:digits-cnn'").fetchone()[0]
    assert two_runs[0].manifest["model_fingerprint"] in manifest
    shown = CliRunner().invoke(cli, ["leaderboard", "show", "--db", str(db), "--metric", "acc", "--format", "csv"])
    assert shown.exit_code == 0 and "clean:clean:acc" in shown.output.splitlines()[0]


def test_newer_schema_is_refused(tmp_path):
    db = tmp_path / "lb.sqlite"
    lb.connect(db).execute("UPDATE schema_version SET version = 99").connection.commit()
    with pytest.raises(RunError, match="schema 99"):
        lb.connect(db)


def test_default_db_respects_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RBL_LEADERBOARD", str(tmp_path / "x.sqlite"))
    assert lb.default_db() == tmp_path / "x.sqlite"
    monkeypatch.delenv("RBL_LEADERBOARD")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert lb.default_db() == tmp_path / "robustbench-local" / "leaderboard.sqlite"

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


@pytest.mark.parametrize("variant", [{"model": "builtin:digits-cnn?input_size=16"}, {"calibration_data": "none"}],
                         ids=["model-query-option", "calibration-data"])
def test_runs_that_differ_only_in_a_model_option_or_calibration_are_distinct(two_runs, tmp_path, variant):
    """Same weights (same fingerprint), data and seed: the other run must not replace the first."""
    options = {"model": "builtin:digits-cnn", "limit": 60, **variant}
    other = rbl.evaluate(options.pop("model"), "builtin:digits", out=tmp_path / "other", **options)
    assert other.manifest["model_fingerprint"] == two_runs[0].manifest["model_fingerprint"]
    con = lb.connect(tmp_path / "lb.sqlite")
    assert lb.add_run(con, two_runs[0]) != lb.add_run(con, other)
    assert con.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 2
    assert con.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == len(two_runs[0].metrics) + len(other.metrics)


def test_schema_1_ids_are_recomputed_on_open(two_runs, tmp_path):
    db = tmp_path / "lb.sqlite"
    con = lb.connect(db)
    for run in two_runs:
        lb.add_run(con, run)
    con.execute("PRAGMA foreign_keys = OFF")
    with con:  # as a version-1 file: other ids, same rows
        con.execute("UPDATE runs SET run_id = 'v1-' || run_id")
        con.execute("UPDATE metrics SET run_id = 'v1-' || run_id")
        con.execute("UPDATE schema_version SET version = 1")
    con = lb.connect(db)
    assert con.execute("SELECT version FROM schema_version").fetchone()[0] == lb.SCHEMA_VERSION
    assert sorted(r for (r,) in con.execute("SELECT run_id FROM runs")) == sorted(lb.run_id(r) for r in two_runs)
    for run in two_runs:
        assert con.execute("SELECT COUNT(*) FROM metrics WHERE run_id = ?", (lb.run_id(run),)).fetchone()[0] == len(
            run.metrics)
        lb.add_run(con, run)  # adding again changes nothing
    assert con.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 2


@pytest.mark.parametrize("case", ["not_sqlite", "under_a_file", "a_directory"])
@pytest.mark.parametrize("command", ["add", "show"])
def test_unusable_db_is_one_line_exit_2(two_runs, tmp_path, case, command):
    (tmp_path / "file.txt").write_text("not a database\n" * 100)
    db = {"not_sqlite": tmp_path / "file.txt", "under_a_file": tmp_path / "file.txt" / "lb.sqlite",
          "a_directory": tmp_path}[case]
    args = ["add", str(two_runs[0].root)] if command == "add" else ["show"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RBL_LEADERBOARD", str(db))  # a directory given as --db is refused by the option itself
        result = CliRunner().invoke(cli, ["leaderboard", *args])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and len(result.output.strip().splitlines()) == 1
    assert str(db) in result.output

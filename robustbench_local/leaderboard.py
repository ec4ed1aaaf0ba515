"""The local leaderboard: finished runs and their metrics in one SQLite file with a versioned schema."""
from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qsl

import pandas as pd

from .errors import RunError, os_reason
from .results import RunResult
from .seeding import derive_seed

SCHEMA_VERSION = 2  # 2: run ids include the options of the model spec (1 left them out)
SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, path TEXT, model TEXT, dataset TEXT, seed INTEGER,
    model_fingerprint TEXT, data_fingerprint TEXT, manifest TEXT NOT NULL, added TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE, suite TEXT, condition TEXT, metric TEXT,
    value REAL, ci_low REAL, ci_high REAL, n INTEGER, PRIMARY KEY (run_id, suite, condition, metric));
"""


def default_db() -> Path:
    """$RBL_LEADERBOARD, else $XDG_DATA_HOME (or ~/.local/share)/robustbench-local/leaderboard.sqlite."""
    if os.environ.get("RBL_LEADERBOARD"):
        return Path(os.environ["RBL_LEADERBOARD"])
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "robustbench-local" / "leaderboard.sqlite"


def connect(path: str | Path) -> sqlite3.Connection:
    """Open (creating if needed) a leaderboard file; upgrade an older schema, refuse a newer one.

    RunError when the path cannot hold a SQLite file or holds something else."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(path)
        con.execute("PRAGMA foreign_keys = ON")
        con.executescript(SCHEMA)
        row = con.execute("SELECT version FROM schema_version").fetchone()
    except (OSError, sqlite3.Error) as exc:
        reason = os_reason(path, exc) if isinstance(exc, OSError) else exc
        raise RunError(f"cannot open the leaderboard {path} ({reason}); pass --db (or set $RBL_LEADERBOARD to) a "
                       "leaderboard file or a new file in a writable directory") from None
    if row is None:
        con.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
        con.commit()
    elif row[0] == 1:
        _rekey(con)
    elif row[0] != SCHEMA_VERSION:
        raise RunError(f"{path} has leaderboard schema {row[0]}, this version reads {SCHEMA_VERSION}; "
                       "upgrade robustbench-local or pass another --db")
    return con


def _rekey(con: sqlite3.Connection) -> None:
    """Schema 1 -> 2: recompute every run id from its stored manifest (the ids gained the model options)."""
    con.execute("PRAGMA foreign_keys = OFF")  # ids change in both tables at once
    with con:
        for old, manifest in con.execute("SELECT run_id, manifest FROM runs").fetchall():
            new = manifest_id(json.loads(manifest))
            con.execute("UPDATE runs SET run_id = ? WHERE run_id = ?", (new, old))
            con.execute("UPDATE metrics SET run_id = ? WHERE run_id = ?", (new, old))
        con.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
    con.execute("PRAGMA foreign_keys = ON")


def manifest_id(m: dict) -> str:
    """Identity of the evaluation a run manifest describes: what its numbers depend on, not where it lies.

    That is the model (weights fingerprint; the query options of the model spec, which may change what the
    same weights compute, e.g. ?input_size= or ?features=; the --arch spec), the data fingerprint, the seed,
    the suite options and the data the temperature was fitted on."""
    spec = m.get("spec") or {}
    model_options = sorted(parse_qsl(str(m.get("model") or "").partition("?")[2], keep_blank_values=True))
    seed = derive_seed(m.get("model_fingerprint"), json.dumps(model_options), spec.get("arch"),
                       m.get("data_fingerprint"), m.get("seed"), json.dumps(m.get("options", {}), sort_keys=True),
                       spec.get("calibration_data", "auto"))
    return f"{seed:016x}"


def run_id(run: RunResult) -> str:
    """Identity of a finished run in the leaderboard (see manifest_id)."""
    return manifest_id(run.manifest)


def add_run(con: sqlite3.Connection, run: RunResult) -> str:
    """Insert or refresh a run and its metrics (adding the same run twice changes nothing)."""
    rid, m = run_id(run), run.manifest
    with con:
        con.execute("DELETE FROM metrics WHERE run_id = ?", (rid,))
        con.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (rid, str(run.root.resolve()), m.get("model"), m.get("data"), m.get("seed"),
                     m.get("model_fingerprint"), m.get("data_fingerprint"), json.dumps(m, sort_keys=True),
                     datetime.now(timezone.utc).isoformat(timespec="seconds")))
        rows = run.metrics[["suite", "condition", "metric", "value", "ci_low", "ci_high", "n"]]
        con.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [(rid, *r) for r in rows.itertuples(index=False, name=None)])
    return rid


def table(con: sqlite3.Connection, suite: str | None = None, metrics: tuple[str, ...] = (),
          sort: str | None = None) -> pd.DataFrame:
    """One row per run, one column per `suite:condition:metric` (filtered by suite / metric names)."""
    query = ("SELECT r.run_id, r.model, r.dataset, r.seed, m.suite, m.condition, m.metric, m.value "
             "FROM runs r JOIN metrics m USING (run_id)")
    long = pd.read_sql_query(query, con)
    if suite:
        long = long[long.suite == suite]
    if metrics:
        long = long[long.metric.isin(metrics)]
    if long.empty:
        return pd.DataFrame(columns=["run_id", "model", "dataset", "seed"])
    long["column"] = long.suite + ":" + long.condition + ":" + long.metric
    wide = long.pivot_table(index=["run_id", "model", "dataset", "seed"], columns="column", values="value",
                            aggfunc="first").reset_index()
    wide.columns.name = None
    if sort:
        matches = [c for c in wide.columns if c == sort or c.endswith(":" + sort)]
        if not matches:
            raise RunError(f"no column {sort!r} to sort by; use a metric name or suite:condition:metric")
        wide = wide.sort_values(matches[0], ascending=False)
    return wide.reset_index(drop=True)

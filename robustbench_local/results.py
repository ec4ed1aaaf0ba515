"""Reading and writing a run's results: metrics.csv / metrics.json, per-sample records, manifest."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd

from .errors import RunError, SpecError
from .records import Records
from .runner.store import CALIBRATION, MANIFEST, RunStore, write_output


@dataclass(frozen=True)
class RunResult:
    """A finished run directory: `.metrics` (tidy table), `.records` (per-sample rows), `.manifest`."""

    root: Path

    @cached_property
    def manifest(self) -> dict:
        return RunStore(self.root).read_json(MANIFEST) or {}

    @cached_property
    def metrics(self) -> pd.DataFrame:
        return pd.read_csv(self.root / "metrics.csv")

    @cached_property
    def records(self) -> pd.DataFrame:
        store = RunStore(self.root)
        frames = []
        for key in store.task_keys():
            meta, recs = store.load_task(key)
            frame = recs.table.copy()
            for column in ("model", "dataset", "suite", "condition"):
                frame.insert(0, column, meta[column])
            frames.append(frame)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    @cached_property
    def calibration(self) -> dict:
        """What the run fitted on held-out clean data (temperature, conformal thresholds); empty if nothing."""
        return RunStore(self.root).read_json(CALIBRATION) or {}

    @property
    def temperature(self) -> float | None:
        return self.calibration.get("temperature")

    @property
    def conformal(self) -> dict | None:
        return self.calibration.get("conformal")

    def task(self, suite: str, condition: str) -> Records:
        """The per-sample records (with logits, if any) of one (suite, condition)."""
        store = RunStore(self.root)
        for key in store.task_keys():
            meta, recs = store.load_task(key)
            if (meta["suite"], meta["condition"]) == (suite, condition):
                return recs
        raise KeyError(f"{self.root} has no task {suite}/{condition}")

    def metric(self, metric: str, suite: str | None = None, condition: str | None = None) -> float:
        """The value of one metric, e.g. run.metric('acc', 'clean'); name the suite and condition wherever the
        run has the metric under several (run.metric('robust_acc', 'attacks', 'pgd:Linf:8/255'))."""
        m = self.metrics
        m = m[m.metric == metric]
        if suite:
            m = m[m.suite == suite]
        if condition:
            m = m[m.condition == condition]
        if m.empty:
            raise KeyError(f"no metric {metric!r} (suite={suite}, condition={condition}) in {self.root}")
        if len(m) > 1:
            where = "condition" if suite else "suite and condition"
            found = ", ".join(f"{s}/{c}" if not suite else repr(c) for s, c in zip(m.suite, m.condition))
            raise SpecError(f"{self.root} has {len(m)} values of {metric!r}; pass the {where}, one of: {found}")
        return float(m.value.iloc[0])


def write_metrics(root: Path, metrics: pd.DataFrame) -> None:
    """metrics.csv and metrics.json (records orientation), both written atomically when their content changes."""
    write_output(root / "metrics.csv", metrics.to_csv(index=False).encode())
    write_output(root / "metrics.json", metrics.to_json(orient="records", indent=1).encode())


def load_run(path: str | Path) -> RunResult:
    """Open a run directory written by `evaluate` / `rbl evaluate`."""
    root = Path(path)
    if not (root / MANIFEST).is_file() or not (root / "metrics.csv").is_file():
        raise RunError(f"{root} is not a finished run directory (no manifest.json/metrics.csv); "
                       "run `rbl evaluate ... --out DIR` first")
    return RunResult(root)

"""The inputs of a report: one run directory's metrics table, labels and per-sample records (read lazily)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from robustbench_local.records import Records
from robustbench_local.results import RunResult, load_run
from robustbench_local.runner.store import RunStore, read_task_file


@dataclass
class ReportRun:
    """A run as the report sees it: `label` (column/row name), `metrics` (tidy table), `records(suite, cond)`."""

    result: RunResult
    label: str
    _cache: dict = field(default_factory=dict, repr=False)

    @cached_property
    def metrics(self) -> pd.DataFrame:
        m = self.result.metrics.copy()
        m["params"] = m["params"].fillna("{}") if "params" in m else "{}"
        m["p"] = m["params"].map(lambda s: json.loads(s) if isinstance(s, str) and s else {})
        return m

    @cached_property
    def _task_index(self) -> dict[tuple[str, str], Path]:
        store = RunStore(self.result.root)
        index = {}
        for key in store.task_keys():
            path = store.task_path(key)
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
            index[(meta["suite"], meta["condition"])] = path
        return index

    def records(self, suite: str, condition: str) -> Records | None:
        """The per-sample records of one task (None if the run has no such task)."""
        key = (suite, condition)
        if key not in self._cache:
            path = self._task_index.get(key)
            self._cache[key] = read_task_file(path)[1] if path else None
        return self._cache[key]

    @property
    def temperature(self) -> float | None:
        return self.result.temperature

    def rows(self, suite: str, metric: str | None = None, condition: str | None = None) -> pd.DataFrame:
        """Metric rows of one suite, optionally one metric / condition."""
        m = self.metrics[self.metrics["suite"] == suite]
        if metric is not None:
            m = m[m["metric"] == metric]
        if condition is not None:
            m = m[m["condition"] == condition]
        return m


def _base_label(result: RunResult) -> str:
    return str(result.manifest.get("model") or result.root.name)


def load_runs(paths: list[str | Path]) -> list[ReportRun]:
    """Open run dirs (RunError if one is not a finished run); labels are the model specs, made unique."""
    results = [load_run(p) for p in paths]
    bases = [_base_label(r) for r in results]
    labels = [b if bases.count(b) == 1 else f"{b} ({r.root.name})" for b, r in zip(bases, results, strict=True)]
    labels = [lab if labels.count(lab) == 1 else f"{lab} #{i + 1}" for i, lab in enumerate(labels)]
    return [ReportRun(r, lab) for r, lab in zip(results, labels, strict=True)]

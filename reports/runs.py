"""The inputs of a report: one run directory's metrics table, labels and per-sample records (read lazily)."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from robustbench_local.records import Records
from robustbench_local.results import RunResult, load_run
from robustbench_local.runner.store import RunStore, read_task_file

from .table import MISSING, Cell, cell_from_row


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

    def rows(self, suite: str, metric: str | None = None, condition: str | None = None,
             where: Callable[[dict], bool] | None = None, **params: Any) -> pd.DataFrame:
        """Metric rows of one suite, optionally of one metric / condition, whose params satisfy `where` and
        equal `params`; an empty frame (with every column) when none match."""
        m = self.metrics
        mask = m["suite"] == suite
        if metric is not None:
            mask &= m["metric"] == metric
        if condition is not None:
            mask &= m["condition"] == condition
        m = m[mask]
        # an explicit bool dtype: the mask of an empty frame would otherwise select columns, not rows
        if where is not None:
            m = m[m["p"].map(where).astype(bool)]
        for key, value in params.items():
            m = m[m["p"].map(lambda p, k=key, v=value: p.get(k) == v).astype(bool)]
        return m

    def cell(self, suite: str, metric: str, condition: str | None = None, **params: Any) -> Cell | str:
        """The value and interval of the first matching metric row, or MISSING when the run has none."""
        rows = self.rows(suite, metric, condition, **params)
        return cell_from_row(rows.iloc[0]) if len(rows) else MISSING


def _base_label(result: RunResult) -> str:
    return str(result.manifest.get("model") or result.root.name)


def load_runs(paths: list[str | Path]) -> list[ReportRun]:
    """Open run dirs (RunError if one is not a finished run); labels are the model specs, made unique."""
    results = [load_run(p) for p in paths]
    bases = [_base_label(r) for r in results]
    labels = [b if bases.count(b) == 1 else f"{b} ({r.root.name})" for b, r in zip(bases, results, strict=True)]
    labels = [lab if labels.count(lab) == 1 else f"{lab} #{i + 1}" for i, lab in enumerate(labels)]
    return [ReportRun(r, lab) for r, lab in zip(results, labels, strict=True)]

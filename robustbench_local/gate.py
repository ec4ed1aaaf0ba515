"""The robustness CI gate: floors and maximum changes per metric, judged with a paired bootstrap.

A `max_drop: d` rule fails when the estimated drop (baseline − candidate) exceeds d and the one-sided 95%
lower bound of the drop is above 0 (the drop is real, not noise); `max_rise` is the same for metrics where
lower is better. A floor `min: v` fails when the estimate is below v and the upper end of its 95% interval
is below v; a ceiling `max: v` mirrors it. Which way is worse comes from the metric's declaration
(`metrics.contract`), so `max_drop` fits metrics where higher is better and `max_rise` the others.

Changes are always paired: both runs' metric rows, summaries included, are recomputed from their per-sample records by
the suites' own metric code under the same resamples of the sample ids (seed parts (gate seed, task key), records in
sample-id order), so the same draws weigh the same ids in both runs (see `Replicates`).
"""
from __future__ import annotations

import json
import math
import reprlib
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .errors import IncompatibleRuns, RunError, SpecError
from .metrics.contract import metric_spec
from .records import Records
from .registry import SUITES
from .results import RunResult
from .runner.store import RunStore
from .runner.task_metrics import task_metrics
from .suites import get_suite
from .yamlfile import read_yaml_document

THRESHOLDS = ("max_drop", "max_rise", "min", "max")
CHANGES = ("max_drop", "max_rise")  # allowed changes: thresholds >= 0
WORSE = {True: "max_drop", False: "max_rise"}  # higher_is_better -> the change rule that fits the metric


@dataclass(frozen=True)
class Rule:
    """One gate rule; `suite` / `condition` left out match every row of that metric."""

    metric: str
    max_drop: float | None = None
    max_rise: float | None = None
    min: float | None = None
    max: float | None = None
    suite: str | None = None
    condition: str | None = None

    def __post_init__(self) -> None:
        """Check every field by type (SpecError naming the field), so a rule is either sound or refused."""
        if not _is_name(self.metric):
            raise SpecError(f"`metric` must be a metric name such as acc, got {_show(self.metric)}")
        for name in ("suite", "condition"):
            value = getattr(self, name)
            if value is not None and not _is_name(value):
                raise SpecError(f"`{name}` must be a one-line name (quote it in YAML), got {_show(value)}")
        set_ = [t for t in THRESHOLDS if getattr(self, t) is not None]
        if len(set_) != 1:
            raise SpecError(f"rule for {self.metric!r} must set exactly one of {', '.join(THRESHOLDS)} "
                            f"(it sets {', '.join(set_) or 'none'})")
        value = getattr(self, set_[0])
        if isinstance(value, bool) or not isinstance(value, int | float) or not _finite(value):
            raise SpecError(f"`{set_[0]}` must be a finite number, got {_show(value)}")
        if set_[0] in CHANGES and value < 0:
            raise SpecError(f"`{set_[0]}` is the change allowed, a number >= 0; got {value:g}")
        spec = metric_spec(self.metric)
        if set_[0] in CHANGES and set_[0] != WORSE[spec.higher_is_better]:
            raise SpecError(f"`{set_[0]}` does not fit {self.metric} ({spec.direction}); use "
                            f"`{WORSE[spec.higher_is_better]}`")

    @property
    def kind(self) -> str:
        return next(t for t in THRESHOLDS if getattr(self, t) is not None)

    @property
    def threshold(self) -> float:
        return float(getattr(self, self.kind))

    def __str__(self) -> str:
        return f"{self.metric} {self.kind.replace('_', ' ')} {self.threshold:g}"


@dataclass(frozen=True)
class Verdict:
    """The judgement of one rule on one (suite, condition)."""

    rule: Rule
    suite: str
    condition: str
    baseline: float | None
    candidate: float
    change: float | None
    low: float
    high: float
    passed: bool
    method: str


def _show(value: object) -> str:
    """A short one-line repr of a user's value for error messages (bounded for any size or nesting)."""
    return f"{type(value).__name__} {_SHORT.repr(value)}"


_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 40


def _is_name(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip()) and value.isprintable()


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _rule_lines(node: yaml.Node | None) -> list[int]:
    """The 1-based line of each item of the top-level `rules:` list (empty if it is not written out there)."""
    items: list[yaml.Node] = []
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == "rules" and isinstance(value, yaml.SequenceNode):
                items = value.value  # the last `rules:` wins, as in the parsed document
    return [item.start_mark.line + 1 for item in items]


def load_rules(path: str | Path) -> list[Rule]:
    """Rules from YAML: `rules: [{metric, suite?, condition?, max_drop|max_rise|min|max}]`.

    Any other document gives a one-line SpecError naming the rule (number and line) and the field."""
    raw, node = read_yaml_document(path, "rules file", "write one or create it with `rbl gate --init`")
    entries = raw.get("rules") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not entries:
        raise SpecError(f"rules file {path} must hold a non-empty list under `rules:`, e.g. "
                        "rules: [{metric: acc, suite: clean, max_drop: 0.01}]")
    lines = _rule_lines(node)
    known = [f.name for f in fields(Rule)]
    rules = []
    for i, entry in enumerate(entries):
        where = f"rules file {path}, rule {i + 1}" + (f" (line {lines[i]})" if len(lines) == len(entries) else "")
        if not isinstance(entry, dict):
            raise SpecError(f"{where}: a rule is a mapping such as {{metric: acc, max_drop: 0.01}}, "
                            f"got {_show(entry)}")
        unknown = sorted(_SHORT.repr(k) for k in entry if k not in known)
        if unknown:
            raise SpecError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")
        if "metric" not in entry:
            raise SpecError(f"{where}: `metric` is missing; name the metric to check, e.g. metric: acc")
        try:
            rules.append(Rule(**entry))
        except SpecError as exc:
            raise SpecError(f"{where}: {exc}") from None
    return rules


def _matching(metrics: pd.DataFrame, rule: Rule) -> pd.DataFrame:
    rows = metrics[metrics.metric == rule.metric]
    if rule.suite is not None:
        rows = rows[rows.suite == rule.suite]
    if rule.condition is not None:
        rows = rows[rows.condition == rule.condition]
    return rows


class Replicates:
    """Metric rows of runs recomputed under the gate's resamples, kept per run for all the rules of one judgement.

    A task's rows come from its suite's `metrics` on its records in sample-id order with seed parts (seed, task key);
    a summary row (a condition that is no task) from the suite's `summary` over all its tasks' rows. These are the
    functions that made the run's reported intervals, so each row's replicates are its metric under the shared
    resamples of the sample ids (ID and OOD ids each by their own) and runs on the same ids pair draw by draw."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._tasks_of: dict[tuple[str, str], dict[str, tuple[dict, Records]]] = {}
        self._rows: dict[tuple, list[dict]] = {}

    def ids(self, run: RunResult, suite: str) -> dict[str, np.ndarray]:
        """Condition -> the sample ids (sorted) of each task of `suite` in `run`."""
        return {meta["condition"]: records.table["sample_id"].to_numpy()
                for meta, records in self._tasks(run, suite).values()}

    def check_paired(self, baseline: RunResult, candidate: RunResult, suite: str) -> None:
        """Refuse runs whose tasks of `suite` hold different conditions or sample ids: their draws would not pair."""
        b_ids, c_ids = self.ids(baseline, suite), self.ids(candidate, suite)
        if b_ids.keys() != c_ids.keys() or any(not np.array_equal(b_ids[c], c_ids[c]) for c in b_ids):
            raise IncompatibleRuns(f"{suite}: the runs hold different sample ids or conditions; compare runs of the "
                                   "same data, --limit and suite options")

    def row(self, run: RunResult, suite: str, condition: str, metric: str) -> tuple[float, np.ndarray]:
        """(value, replicates) of one metric row; a clear error where the run lacks the per-sample records or the
        metric has no replicates (a single check or fit)."""
        tasks = self._tasks(run, suite)
        if not tasks:
            raise RunError(f"{run.root} has no per-sample records of suite {suite!r}, which the paired comparison of "
                           f"{metric} needs; compare run directories with their tasks/ folder (re-run the evaluation)")
        found = [r for r in self._suite_rows(run, suite, condition, tasks) if r["metric"] == metric
                 and r["condition"] == condition]
        if not found:
            raise IncompatibleRuns(f"{run.root} has no {metric} for {suite}/{condition} in its records; evaluate "
                                   "both runs with the same suites and options")
        if found[0].get("replicates") is None:
            raise SpecError(f"{metric} is a single number with no bootstrap replicates (a check or a fit), so no "
                            "change of it can be judged; gate it with `min:` or `max:`")
        return found[0]["value"], np.asarray(found[0]["replicates"], np.float64)

    def _tasks(self, run: RunResult, suite: str) -> dict[str, tuple[dict, Records]]:
        """Task key -> (meta, records in sample-id order) of every task of `suite` in `run` (read once)."""
        key = (str(run.root), suite)
        if key not in self._tasks_of:
            store = RunStore(run.root)
            tasks = {}
            for task_key in store.task_keys():
                if store.load_meta(task_key)["suite"] != suite:
                    continue
                meta, records = store.load_task(task_key)
                order = np.argsort(records.table["sample_id"].to_numpy(), kind="stable")
                tasks[task_key] = (meta, Records(records.table.iloc[order].reset_index(drop=True),
                                                 None if records.logits is None else records.logits[order],
                                                 records.info))
            self._tasks_of[key] = tasks
        return self._tasks_of[key]

    def _task_rows(self, run: RunResult, task_key: str, meta: dict, records: Records) -> list[dict]:
        key = ("task", str(run.root), task_key)
        if key not in self._rows:
            rows = task_metrics(meta["suite"], records, run.temperature, run.conformal, (self.seed, task_key))
            self._rows[key] = [{"condition": meta["condition"], "params": json.dumps(meta["params"], sort_keys=True),
                                **r} for r in rows]
        return self._rows[key]

    def _suite_rows(self, run: RunResult, suite: str, condition: str,
                    tasks: dict[str, tuple[dict, Records]]) -> list[dict]:
        own = [k for k, (meta, _) in tasks.items() if meta["condition"] == condition]
        if own:
            return self._task_rows(run, own[0], *tasks[own[0]])
        key = ("summary", str(run.root), suite)
        if key not in self._rows:
            rows = [r for k, (meta, records) in tasks.items() for r in self._task_rows(run, k, meta, records)]
            self._rows[key] = get_suite(suite).summary(pd.DataFrame(rows))
        return self._rows[key]


def _judge_change(rule: Rule, brow: pd.Series, crow: pd.Series, baseline: RunResult | None,
                  candidate: RunResult, replicates: Replicates) -> Verdict:
    """A paired bootstrap of the change in the metric's worse direction (baseline − candidate where higher is
    better): the same resamples of the sample ids weigh both runs."""
    if baseline is None:
        raise IncompatibleRuns(f"rule `{rule}` compares the runs sample by sample: pass the baseline's run directory "
                               "(with its per-sample records), not its metrics table")
    suite, condition = crow.suite, crow.condition
    if suite not in SUITES:
        raise SpecError(f"{rule.metric} of {suite}/{condition} has no per-sample records to resample, so no change "
                        "of it can be judged; gate it with `min:` or `max:`")
    replicates.check_paired(baseline, candidate, suite)
    b_value, b_draws = replicates.row(baseline, suite, condition, rule.metric)
    c_value, c_draws = replicates.row(candidate, suite, condition, rule.metric)
    sign = 1.0 if rule.kind == "max_drop" else -1.0
    change = sign * (b_value - c_value)
    low, high = np.nanpercentile(sign * (b_draws - c_draws), [5, 95])
    failed = change > rule.threshold and low > 0
    return Verdict(rule, suite, condition, float(brow.value), float(crow.value), float(change), float(low),
                   float(high), not failed, "paired bootstrap")


def _judge_bound(rule: Rule, crow: pd.Series) -> Verdict:
    if rule.kind == "min":
        failed = crow.value < rule.threshold and crow.ci_high < rule.threshold
    else:
        failed = crow.value > rule.threshold and crow.ci_low > rule.threshold
    return Verdict(rule, crow.suite, crow.condition, None, float(crow.value), None, float(crow.ci_low),
                   float(crow.ci_high), not failed, "95% bootstrap interval")


def check_comparable(baseline: RunResult, candidate: RunResult) -> None:
    """Refuse runs on different data (fingerprint of images, labels and ids) or class counts."""
    for key in ("data_fingerprint", "num_classes"):
        if baseline.manifest.get(key) != candidate.manifest.get(key):
            raise IncompatibleRuns(f"baseline and candidate differ in {key.replace('_', ' ')} "
                                   f"({baseline.manifest.get(key)} vs {candidate.manifest.get(key)}); "
                                   "compare only runs evaluated on the same data")


def judge(baseline: RunResult | pd.DataFrame | None, candidate: RunResult, rules: list[Rule],
          seed: int = 0) -> list[Verdict]:
    """Judge every rule on every matching (suite, condition) of the candidate's metrics."""
    base_run = baseline if isinstance(baseline, RunResult) else None
    if base_run is not None:
        check_comparable(base_run, candidate)
    base_metrics = base_run.metrics if base_run is not None else baseline
    replicates = Replicates(seed)
    verdicts = []
    for rule in rules:
        rows = _matching(candidate.metrics, rule)
        if rows.empty:
            raise SpecError(f"rule `{rule}` (suite={rule.suite}, condition={rule.condition}) matches no metric of "
                            f"the candidate run; check the names in its metrics.csv")
        for _, crow in rows.iterrows():
            if rule.kind in ("min", "max"):
                verdicts.append(_judge_bound(rule, crow))
                continue
            if base_metrics is None:
                raise SpecError(f"rule `{rule}` compares with a baseline: pass --baseline")
            match = base_metrics[(base_metrics.metric == rule.metric) & (base_metrics.suite == crow.suite)
                                 & (base_metrics.condition == crow.condition)]
            if match.empty:
                raise IncompatibleRuns(f"the baseline has no {rule.metric} for {crow.suite}/{crow.condition}; "
                                       "evaluate it with the same suites and options")
            verdicts.append(_judge_change(rule, match.iloc[0], crow, base_run, candidate, replicates))
    return verdicts

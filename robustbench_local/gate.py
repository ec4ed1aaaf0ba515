"""The robustness CI gate: floors and maximum changes per metric, judged with a paired bootstrap.

A `max_drop: d` rule fails when the estimated drop (baseline − candidate) exceeds d and the one-sided 95%
lower bound of the drop is above 0 (the drop is real, not noise); `max_rise` is the same for metrics where
lower is better. A floor `min: v` fails when the estimate is below v and the upper end of its 95% interval
is below v; a ceiling `max: v` mirrors it. Drops are paired over the per-sample records of the same sample
ids (the ids are resampled once and applied to both runs); metrics that have no per-sample records fall back
to an unpaired normal approximation from the two intervals, and the verdict says so.
"""
from __future__ import annotations

import math
import reprlib
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .errors import IncompatibleRuns, SpecError
from .metrics import resample_weights, weighted_metric
from .results import RunResult
from .yamlfile import read_yaml_document

THRESHOLDS = ("max_drop", "max_rise", "min", "max")
CHANGES = ("max_drop", "max_rise")  # allowed changes: thresholds >= 0
N_BOOT = 2000


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


def _paired(baseline: RunResult, candidate: RunResult, rule: Rule, suite: str, condition: str,
            seed: int) -> tuple[float, np.ndarray] | None:
    """(estimated change, bootstrap changes) from per-sample records, or None if the metric has none."""
    try:
        b, c = baseline.task(suite, condition), candidate.task(suite, condition)
    except KeyError:
        return None
    if b.logits is None or c.logits is None:
        return None
    b_order, c_order = np.argsort(b.table.sample_id.to_numpy()), np.argsort(c.table.sample_id.to_numpy())
    if not np.array_equal(b.table.sample_id.to_numpy()[b_order], c.table.sample_id.to_numpy()[c_order]):
        raise IncompatibleRuns(f"{suite}/{condition}: the runs hold different sample ids; compare runs of the same "
                               "data, --limit and seed-independent selection")
    fb = weighted_metric(b.logits[b_order], b.table.label.to_numpy()[b_order], rule.metric, baseline.temperature)
    fc = weighted_metric(c.logits[c_order], c.table.label.to_numpy()[c_order], rule.metric, candidate.temperature)
    if fb is None or fc is None:
        return None
    sign = 1.0 if rule.kind == "max_drop" else -1.0
    n = len(b_order)
    estimate = float(sign * (fb(np.ones((1, n))) - fc(np.ones((1, n))))[0])
    changes = np.concatenate([sign * (fb(w) - fc(w)) for w in resample_weights(n, N_BOOT, seed, "gate", str(rule),
                                                                               suite, condition)])
    return estimate, changes


def _judge_change(rule: Rule, brow: pd.Series, crow: pd.Series, baseline: RunResult | None,
                  candidate: RunResult, seed: int) -> Verdict:
    sign = 1.0 if rule.kind == "max_drop" else -1.0
    paired = _paired(baseline, candidate, rule, crow.suite, crow.condition, seed) if baseline else None
    if paired is not None:
        change, draws = paired
        low, high = np.percentile(draws, [5, 95])
        method = "paired bootstrap"
    else:
        change = float(sign * (brow.value - crow.value))
        se = np.hypot(brow.ci_high - brow.ci_low, crow.ci_high - crow.ci_low) / (2 * 1.96)
        low, high = change - 1.645 * se, change + 1.645 * se
        method = "unpaired (from the intervals)"
    failed = change > rule.threshold and low > 0
    return Verdict(rule, crow.suite, crow.condition, float(brow.value), float(crow.value), change, float(low),
                   float(high), not failed, method)


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
                                   "gate only runs evaluated on the same data")


def judge(baseline: RunResult | pd.DataFrame | None, candidate: RunResult, rules: list[Rule],
          seed: int = 0) -> list[Verdict]:
    """Judge every rule on every matching (suite, condition) of the candidate's metrics."""
    base_run = baseline if isinstance(baseline, RunResult) else None
    if base_run is not None:
        check_comparable(base_run, candidate)
    base_metrics = base_run.metrics if base_run is not None else baseline
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
            verdicts.append(_judge_change(rule, match.iloc[0], crow, base_run, candidate, seed))
    return verdicts

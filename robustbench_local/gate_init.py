"""`rbl gate --init`: gate rules proposed from a baseline run's own noise.

One rule per headline metric of each (suite, condition) of the baseline: `max_drop` where higher is better,
`max_rise` where lower is better, allowing a change as large as the full width of the metric's 95% bootstrap
interval on the baseline (rounded up to two significant digits), in the metric's own units. Why the full width:
the change between two runs of equally good models has a standard error of at most √2·se (less when paired),
and the width 2·1.96·se is 2.8 of those, so a seed-only change exceeds it with probability ≈ 0.3% per rule;
README gives the rate measured on seed-only changes of the built-in models.

Numbers that repeat another one get no rule of their own: a task whose per-sample predictions are those of an
earlier task (an attack at eps 0 repeats the clean task), and a metric whose value on a task equals that of
another metric already ruled on the same task (a temperature-scaled variant when the temperature is 1).
A metric without an interval, or with one of zero width, gives no noise estimate and gets no rule.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import yaml

from .gate import WORSE
from .metrics.contract import metric_spec
from .records import Records
from .results import RunResult
from .runner.execute import CALIBRATION_ROWS
from .suites import get_suite


def allowance(width: float) -> float:
    """`width` rounded up to two significant digits (0.01667 -> 0.017), so the file reads well and stays >= width."""
    step = 10.0 ** (math.floor(math.log10(width)) - 1)
    return round(math.ceil(width / step - 1e-9) * step, 12)


def _headline(row: pd.Series) -> bool:
    return row.suite != CALIBRATION_ROWS and row.metric in get_suite(row.suite).headline


def _same_predictions(a: Records, b: Records) -> bool:
    if a.logits is not None and b.logits is not None:
        return a.logits.shape == b.logits.shape and bool(np.array_equal(a.logits, b.logits)) \
            and bool(np.array_equal(a.table.sample_id.to_numpy(), b.table.sample_id.to_numpy()))
    return a.logits is None and b.logits is None and a.table.equals(b.table)


def _repeated_tasks(baseline: RunResult, tasks: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """The tasks whose per-sample predictions equal those of an earlier task in `tasks`."""
    records: dict[tuple[str, str], Records | None] = {}
    for task in tasks:
        try:
            records[task] = baseline.task(*task)
        except KeyError:  # a summary row (e.g. a mean over conditions) has no task of its own
            records[task] = None
    kept: list[tuple[str, str]] = []
    repeated = set()
    for task in tasks:
        mine = records[task]
        if mine is not None and any(_same_predictions(mine, records[k]) for k in kept if records[k] is not None):
            repeated.add(task)
        else:
            kept.append(task)
    return repeated


def propose_rules(baseline: RunResult) -> list[dict]:
    """The rules proposed for `baseline` (see the module's docstring), as mappings ready for the rules file."""
    rows = baseline.metrics[baseline.metrics.apply(_headline, axis=1)]
    rows = rows[rows.ci_low.notna() & rows.ci_high.notna() & (rows.ci_high > rows.ci_low)]
    suite_order = {"clean": 0}  # the clean task first, so an attack at eps 0 is the one recognised as a repeat
    rows = rows.sort_values("suite", key=lambda s: s.map(lambda name: suite_order.get(name, 1)), kind="stable")
    tasks = list(dict.fromkeys(zip(rows.suite, rows.condition, strict=True)))
    repeated = _repeated_tasks(baseline, tasks)
    rules, seen = [], {}
    for _, row in rows.iterrows():
        task = (row.suite, row.condition)
        values = seen.setdefault(task, [])
        if task in repeated or any(math.isclose(row.value, v, rel_tol=1e-9, abs_tol=1e-12) for v in values):
            continue
        values.append(row.value)
        kind = WORSE[metric_spec(row.metric).higher_is_better]
        rules.append({"metric": row.metric, "suite": row.suite, "condition": row.condition,
                      kind: allowance(row.ci_high - row.ci_low)})
    return rules


def rules_document(rules: list[dict], source: str) -> str:
    """The rules file's text: a header saying where the allowances come from, then one flow mapping per rule."""
    lines = [f"# Proposed by `rbl gate --init` from {source}.",
             "# Each allowance is the width of the metric's 95% bootstrap interval on that run, in the metric's units",
             "# (max_drop where higher is better, max_rise where lower is better). Tighten or loosen them here;",
             "# `rbl ci` reads this file from the base branch, so a pull request cannot loosen its own gate.",
             "rules:"]
    lines += [f"  - {yaml.safe_dump(rule, default_flow_style=True, sort_keys=False, width=10_000).strip()}"
              for rule in rules]
    return "\n".join(lines) + "\n"

"""Suite `attacks`: robust accuracy under attack sequences x norms x eps, per-point worst case, with sanity flags.

Records are `classification_records` of the recorded example per point (see engine.PointState) plus
`clean_correct`, `attack_success`, `broken_by` (attack name, 'clean' for misclassified points, '' for robust),
`perturbation_linf`, `perturbation_l2` and `queries` (the model passes, forward plus backward, the point received
from the attacks and restarts that ran on it, counted; a point stops receiving them once broken). Metrics: the
calibration metrics of BaseSuite on those examples (raw and `_ts` with the clean-fitted temperature), plus
`robust_acc`, `clean_acc`, `attack_success_rate` (broken / clean-correct; its `n` counts the clean-correct points),
`mean_queries` (queries per point, over all points), `max_perturbation_linf|l2`, `zero_grad_share` (`n`: the points
checked),
and sanity flags as rows `flag_<name>` with value 0 or 1 (attacks/checks.py says what each means).

Eps sweeps reuse work: the outcome at eps_k starts from the outcome at the next smaller eps of the same sweep
(same attack, norm and settings): a point broken there keeps that example, which lies in every larger ball,
and only the other points are attacked, so the curve is monotone by construction. Outcomes are kept in the
worker's cache (ctx.cache), so an in-process sweep computes each eps once, and a worker that gets a larger
eps first computes the smaller ones itself: records never depend on the executor or the task order.
"""
from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from robustbench_local.errors import SpecError
from robustbench_local.metrics import bootstrap_with_replicates, metric_row
from robustbench_local.metrics.contract import MetricSpec
from robustbench_local.parsing import parse_int
from robustbench_local.record_schema import BOOL, CLASSIFICATION_SCHEMA, FLOAT, INT, TEXT
from robustbench_local.records import Records, classification_records
from robustbench_local.runner.execute import Task
from robustbench_local.suites import BaseSuite, Condition, TaskContext

from .checks import CHECK_POINTS, FLAG_HINTS, FLAG_SPECS, condition_flags, model_checks, sweep_flag
from .engine import PointState, run_sequence
from .registry import AttackConfig, check_norm, parse_sequence
from .threat import check_radius, parse_eps, parse_norm


def _items(text: str) -> tuple[str, ...]:
    items = tuple(part.strip() for part in str(text).split(",") if part.strip())
    if not items:
        raise SpecError(f"empty list {text!r}; give at least one value")
    return items


def parse_attacks(text: str) -> tuple[str, ...]:
    """Comma-separated attack specs; each is checked now so that a typo fails before any work."""
    items = _items(text)
    for item in items:
        parse_sequence(item)
    return items


def parse_eps_list(text: str) -> tuple[str, ...]:
    """Comma-separated radii (fractions allowed), kept as written, sorted by value, duplicates removed."""
    values = {}
    for item in _items(text):
        values.setdefault(parse_eps(item), item)
    return tuple(values[v] for v in sorted(values))


def parse_norms(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(parse_norm(n) for n in _items(text)))


def optional_int(text: str) -> int | None:
    if text.strip().lower() in ("", "none", "default"):
        return None
    return parse_int(text, 1)


def make_condition(attack: str, norm: str, eps_text: str, overrides: dict[str, Any]) -> Condition:
    """The condition for one (attack sequence, norm, eps); params hold the full resolved attack config."""
    members = parse_sequence(attack, overrides)
    check_norm(members, norm, attack)
    shown = attack + "".join(f" {k}={v}" for k, v in overrides.items() if v is not None)
    eps = check_radius(norm, parse_eps(eps_text), eps_text)
    params = {"attack": shown, "spec": attack, "norm": norm, "eps": eps, "eps_text": eps_text,
              "members": [m.to_json() for m in members]}
    return Condition(f"{shown}:{norm}:{eps_text}", params)


def _largest_drawn(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Per row of weights `w` (B, N): the largest x_i among the samples drawn (weight > 0); NaN without samples."""
    if not x.size:
        return np.full(len(w), np.nan)
    return np.where(w > 0, x, -np.inf).max(axis=1)


class AttackSuite(BaseSuite):
    name = "attacks"
    headline = ("robust_acc", "attack_success_rate", "ece_15_equal_width", "ece_15_equal_width_ts")
    report_module = "robustbench_local.attacks.report"
    demo_options: ClassVar[dict[str, Any]] = {"attack": "pgd", "norm": "Linf", "eps": "0,2/255,8/255,0.1"}
    record_schema = {**CLASSIFICATION_SCHEMA, "clean_correct": BOOL, "attack_success": BOOL, "broken_by": TEXT,
                     "perturbation_linf": FLOAT, "perturbation_l2": FLOAT, "queries": INT}
    metric_specs = (
        MetricSpec("robust_acc", True, 0.0, 1.0, "fraction of points that are clean-correct and that no attack of the "
                   "sequence breaks within ‖δ‖ ≤ ε (per-point worst case; ε in [0,1] pixel units)."),
        MetricSpec("clean_acc", True, 0.0, 1.0, "accuracy of the attacked points before any attack."),
        MetricSpec("attack_success_rate", False, 0.0, 1.0, "broken / clean-correct (`n`: the clean-correct points)."),
        MetricSpec("mean_queries", False, 0.0, float("inf"),
                   "model passes (forward plus backward) per point that the attacks spent, over all points."),
        MetricSpec("max_perturbation_linf", False, 0.0, 1.0, "largest L∞ norm of a recorded perturbation."),
        MetricSpec("max_perturbation_l2", False, 0.0, float("inf"), "largest L2 norm of a recorded perturbation."),
        MetricSpec("zero_grad_share", False, 0.0, 1.0, "share of the checked clean-correct points with an all-zero or "
                   "non-finite input gradient of the margin loss."),
        *FLAG_SPECS,
    )

    def _overrides(self, options: dict[str, Any]) -> dict[str, Any]:
        return {k: options.get(k) for k in ("steps", "restarts") if options.get(k) is not None}

    def conditions(self, options: dict[str, Any]) -> list[Condition]:
        overrides = self._overrides(options)
        return [make_condition(attack, norm, eps, overrides)
                for attack in options["attack"] for norm in options["norm"] for eps in options["eps"]]

    def run(self, condition: Condition, ctx: TaskContext) -> Records:
        data = ctx.data
        members = [AttackConfig(m["name"], m["config"]) for m in condition.params["members"]]
        state = self._state_at(condition, ctx)
        shard = ("attacks:checks", data.ids[0] if len(data) else "", len(data))
        if shard not in ctx.cache:  # model-level checks: once per set of points
            ctx.cache[shard] = model_checks(ctx.model, data.read, data.labels, state.clean_correct)
        checks = ctx.cache[shard]
        records = classification_records(
            state.logits, data.labels, data.ids, clean_correct=state.clean_correct, attack_success=state.broken,
            broken_by=state.broken_by.astype(str), perturbation_linf=state.linf, perturbation_l2=state.l2,
            queries=state.queries)
        records.info = {"checks": checks, "seconds": state.seconds,
                        "kinds": [[m.name, m.spec.meta["kind"]] for m in members]}
        fired = [k for k, v in self._flags(records).items() if v]
        if fired:
            hints = "".join(f"; {FLAG_HINTS[k]}" for k in fired if k in FLAG_HINTS)
            ctx.progress.note(f"warning: attacks {condition.name}: sanity flag(s) fired: {', '.join(fired)} "
                              f"(see the flag_* rows of metrics.csv){hints}")
        return records

    def _state_at(self, condition: Condition, ctx: TaskContext) -> PointState:
        """The per-point outcome of `condition`, built on the next smaller eps of its sweep (cached per worker)."""
        data, params = ctx.data, condition.params
        key = ("attacks:state", condition.name, data.ids[0] if len(data) else "", len(data))
        if key in ctx.cache:
            return ctx.cache[key]
        state = PointState.from_clean(ctx.clean_logits(), data.labels)
        smaller = [e for e in ctx.options.get("eps", ()) if parse_eps(e) < params["eps"]]
        sibling = make_condition(params["spec"], params["norm"], smaller[-1], self._overrides(ctx.options)) \
            if smaller else None
        if sibling is not None and sibling.params["members"] == params["members"]:
            previous = self._state_at(sibling, ctx)
            state.adopt(previous, previous.broken)
        members = [AttackConfig(m["name"], m["config"]) for m in params["members"]]
        task_key = Task(self, condition).key
        run_sequence(ctx.model, data.read, data.labels, data.ids, members, params["norm"], params["eps"], state,
                     (ctx.seed, task_key), ctx.batch_size, ctx.progress)
        ctx.cache[key] = state
        return state

    @staticmethod
    def _accuracies(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        clean = table["clean_correct"].to_numpy().astype(float)
        success = table["attack_success"].to_numpy().astype(float)
        return clean, success, clean * (1 - success)

    def _flags(self, records: Records) -> dict[str, int]:
        clean, _, robust = self._accuracies(records.table)
        adv = records.table["correct"].to_numpy().astype(float)
        return condition_flags(records.info["checks"], records.table["broken_by"].to_numpy().astype(str),
                               [tuple(k) for k in records.info["kinds"]], robust.mean(), adv.mean(), clean.mean())

    def metrics(self, records: Records, temperature: float | None, seed_parts: tuple) -> list[dict]:
        rows = super().metrics(records, temperature, seed_parts)
        table, n = records.table, len(records.table)
        clean, success, robust = self._accuracies(table)
        ones = np.ones(n)
        ratios = {"robust_acc": (robust, ones), "clean_acc": (clean, ones), "attack_success_rate": (success, clean),
                  "mean_queries": (table["queries"].to_numpy(float), ones)}
        largest = {name: table[f"perturbation_{norm}"].to_numpy(float)
                   for name, norm in (("max_perturbation_linf", "linf"), ("max_perturbation_l2", "l2"))}

        def statistic(w: np.ndarray) -> dict[str, np.ndarray]:
            out = {name: (w @ num) / (w @ den) for name, (num, den) in ratios.items()}
            return out | {name: _largest_drawn(w, x) for name, x in largest.items()}

        rows += [metric_row(name, value, draws, int(ratios[name][1].sum()) if name in ratios else n)
                 for name, (value, draws) in bootstrap_with_replicates(statistic, n, *seed_parts).items()]
        checks = records.info["checks"]  # records written before the count was kept: the check's cap (exact unsharded)
        checked = checks.get("zero_grad_points", min(CHECK_POINTS, int(clean.sum())))
        single = {"zero_grad_share": (checks["zero_grad_share"], checked)}  # `n` of a ratio: its denominator's count
        single.update({f"flag_{k}": (v, n) for k, v in self._flags(records).items()})
        rows += [metric_row(k, v, None, count) for k, (v, count) in single.items()]
        return rows

    def summary(self, metrics: pd.DataFrame) -> list[dict]:
        """`flag_eps_not_decreasing` per sweep (same attack, norm and settings over several eps)."""
        robust = metrics[metrics["metric"] == "robust_acc"]
        sweeps: dict[str, list[tuple[float, float]]] = {}
        names: dict[str, str] = {}
        norms: dict[str, str] = {}
        for _, row in robust.iterrows():
            params = json.loads(row["params"])
            key = json.dumps([params["members"], params["norm"]], sort_keys=True)
            sweeps.setdefault(key, []).append((params["eps"], row["value"]))
            names[key] = f"{params['attack']}:{params['norm']}:sweep"
            norms[key] = params["norm"]
        return [{"condition": names[k], **metric_row("flag_eps_not_decreasing", sweep_flag(v, norms[k]), None,
                                                     robust["n"].iloc[0])} for k, v in sweeps.items()]


SUITE = AttackSuite()

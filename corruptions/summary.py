"""The corruption suite's cross-condition summary, with intervals from a paired bootstrap over sample ids.

Every condition of a run evaluates the same source images, so one resample of the sample ids (the same
multinomial weights, seeded by the run seed and SUMMARY_KEY, laid over the ids in sorted order) is applied
to every condition. Each task stores its metrics under those shared weights (`paired_rows`, computed once
with the task's cached metrics, where its logits are at hand); the summary recomputes its statistic (mean
over conditions, CE, mCE, ...) replicate by replicate and reports the 2.5/97.5 percentiles. Point estimates
come from the per-condition values exactly as before.
"""
from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import pandas as pd

from robustbench_local.metrics import N_BOOT, Predictions, bootstrap_replicates, metric_row, statistic_of
from robustbench_local.metrics.contract import MetricSpec
from robustbench_local.records import Records
from robustbench_local.seeding import derive_seed

from .mce import ce_alexnet, mce_alexnet, relative_ce_alexnet, relative_mce_alexnet
from .names import CATEGORIES, COMMON, SEVERITIES

SUMMARY_KEY = "corruptions-summary"
PER_SEVERITY = ("ece_15_equal_width", "ece_15_equal_width_ts", "aurc", "misclassification_auroc")  # mean_<m> rows
PAIRED_METRICS = ("acc", *PER_SEVERITY)  # what the summary averages or ratios
SPECS = (
    MetricSpec("mean_corruption_acc", True, 0.0, 1.0, "mean acc over the corruption × severity conditions evaluated "
               "(condition `common`: the 15 common corruptions; also per category and per severity)."),
    MetricSpec("mean_corruption_error", False, 0.0, 1.0, "1 − mean_corruption_acc over the 15 common corruptions."),
    MetricSpec("mean_ece_15_equal_width", False, 0.0, 1.0,
               "mean equal-width ECE over the common corruptions at one severity."),
    MetricSpec("mean_ece_15_equal_width_ts", False, 0.0, 1.0,
               "mean temperature-scaled equal-width ECE over the common corruptions at one severity."),
    MetricSpec("mean_aurc", False, 0.0, 1.0, "mean AURC (MSP ranking) over the common corruptions at one severity."),
    MetricSpec("mean_misclassification_auroc", True, 0.0, 1.0,
               "mean misclassification-detection AUROC over the common corruptions at one severity."),
    MetricSpec("ce_alexnet", False, 0.0, float("inf"), "CE_c = Σ_s E_{s,c} / Σ_s E^AlexNet_{s,c} over severities 1-5."),
    MetricSpec("relative_ce_alexnet", False, float("-inf"), float("inf"),
               "rCE_c = Σ_s (E_{s,c} − E_clean) / Σ_s (E^AlexNet_{s,c} − E^AlexNet_clean), E^AlexNet_clean = 0.4348."),
    MetricSpec("mce_alexnet", False, 0.0, float("inf"), "mean of CE_c over the 15 common corruptions (needs "
               "severities 1-5; AlexNet errors are from the released ImageNet-C)."),
    MetricSpec("relative_mce_alexnet", False, float("-inf"), float("inf"),
               "mean of rCE_c over the 15 common corruptions."),
)


def paired_rows(rows: list[dict], records: Records, variants: Mapping[str, Predictions], run_seed: object,
                n_boot: int = N_BOOT) -> list[dict]:
    """`rows` with `paired` (the metric under each of the run's shared resamples) and `paired_ids` (a fingerprint of
    the sample-id set the resamples index) added to the PAIRED_METRICS rows; `variants` are the task's predictions
    (see `robustbench_local.metrics.predictions`), shared with its own metrics."""
    ids = records.table["sample_id"].to_numpy()  # precomputed sets too: their ids are the source images' ids
    order = np.argsort(ids, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))  # column j of a weight matrix belongs to the j-th smallest id
    fingerprint = f"{derive_seed(*ids[order]):016x}"
    wanted = {r["metric"] for r in rows} & set(PAIRED_METRICS)
    draws = bootstrap_replicates(statistic_of(variants, wanted), len(ids), run_seed, SUMMARY_KEY, n_boot=n_boot,
                                 columns=rank)
    return [{**r, "paired": draws[r["metric"]].tolist(), "paired_ids": fingerprint} if r["metric"] in draws else r
            for r in rows]


def _draws(part: pd.DataFrame) -> np.ndarray | None:
    """The rows' paired replicates stacked (rows, B) in row order; None (no interval) when a row has none (a metric
    cache from before paired replicates) or the rows' conditions were evaluated on different sample ids, where no
    common resample of ids exists."""
    if "paired" not in part or not part["paired"].map(lambda r: isinstance(r, list)).all():
        return None
    if part["paired_ids"].nunique() != 1:
        return None
    return np.stack(part["paired"].map(np.asarray).to_list())


def _row(condition: str, metric: str, value: float, n: int, draws: np.ndarray | None) -> dict:
    return {"condition": condition, **metric_row(metric, value, draws, n)}


def _apply(fn, draws: np.ndarray | None) -> np.ndarray | None:
    return None if draws is None else fn(draws)


def summary_rows(metrics: pd.DataFrame) -> list[dict]:
    """Means over conditions (common, per category, validation, per severity) and the AlexNet-normalised errors.

    Means average the per-condition values present; mCE needs all 15 common corruptions at all 5
    severities, a corruption's CE all 5 of its severities, relative CE also the clean condition.
    """
    params = metrics["params"].map(json.loads)
    per = metrics.assign(corruption=params.map(lambda p: p.get("corruption")),
                         severity=params.map(lambda p: p.get("severity", 0)))
    acc = per[per.metric == "acc"]
    cond = acc[acc.corruption.notna()]
    clean = acc[acc.condition == "clean"]
    rows: list[dict] = []

    def mean_of(name: str, metric: str, part: pd.DataFrame) -> None:
        if len(part):
            rows.append(_row(name, metric, part.value.mean(), part.n.sum(), _apply(lambda d: d.mean(0), _draws(part))))

    common = cond[cond.corruption.isin(COMMON)]
    mean_of("common", "mean_corruption_acc", common)
    if len(common):
        rows.append(_row("common", "mean_corruption_error", 1 - common.value.mean(), common.n.sum(),
                         _apply(lambda d: 1 - d.mean(0), _draws(common))))
    for category, names in CATEGORIES.items():
        mean_of(category, "mean_corruption_acc", cond[cond.corruption.isin(names)])
    for s in sorted(cond.severity.unique()):
        mean_of(f"severity={s}", "mean_corruption_acc", common[common.severity == s])
        for metric in PER_SEVERITY:
            mean_of(f"severity={s}", f"mean_{metric}",
                    per[(per.metric == metric) & per.corruption.isin(COMMON) & (per.severity == s)])
    errors = {c: g.sort_values("severity") for c, g in cond.groupby("corruption")
              if sorted(g.severity) == list(SEVERITIES)}
    clean_error = 1 - float(clean.value.iloc[0]) if len(clean) else None
    for c, g in errors.items():
        rows.append(_row(c, "ce_alexnet", ce_alexnet(1 - g.value.to_numpy(), c), g.n.sum(),
                         _apply(lambda d, c=c: ce_alexnet(1 - d, c), _draws(g))))
        if clean_error is not None:  # the clean replicates ride last: errors d[:-1], clean error d[-1]
            rows.append(_row(c, "relative_ce_alexnet", relative_ce_alexnet(1 - g.value.to_numpy(), clean_error, c),
                             g.n.sum(), _apply(lambda d, c=c: relative_ce_alexnet(1 - d[:-1], 1 - d[-1], c),
                                               _draws(pd.concat([g, clean.iloc[:1]])))))
    if all(c in errors for c in COMMON):
        err = {c: 1 - errors[c].value.to_numpy() for c in COMMON}
        n = sum(errors[c].n.sum() for c in COMMON)
        stacked = pd.concat([errors[c] for c in COMMON] + [clean.iloc[:1]])  # 5 rows per corruption, clean last

        def split(d: np.ndarray) -> dict[str, np.ndarray]:
            return {c: 1 - d[5 * i:5 * i + 5] for i, c in enumerate(COMMON)}

        rows.append(_row("common", "mce_alexnet", mce_alexnet(err), n,
                         _apply(lambda d: mce_alexnet(split(d)), _draws(stacked.iloc[:5 * len(COMMON)]))))
        if clean_error is not None:
            rows.append(_row("common", "relative_mce_alexnet", relative_mce_alexnet(err, clean_error), n,
                             _apply(lambda d: relative_mce_alexnet(split(d), 1 - d[-1]), _draws(stacked))))
    return rows


__all__ = ["PAIRED_METRICS", "SPECS", "SUMMARY_KEY", "paired_rows", "summary_rows"]

"""A task's metric rows: the one computation behind the reported intervals and the gate's paired replicates."""
from __future__ import annotations

from ..metrics.conformal import ConformalFit, conformal_metrics
from ..records import Records
from ..suites import get_suite


def task_metrics(suite: str, records: Records, temperature: float | None, conformal: dict | None,
                 seed_parts: tuple) -> list[dict]:
    """Rows {metric, value, ci_low, ci_high, n, replicates} of one task: its suite's metrics and, where its records
    keep logits and labels and the run fitted conformal sets, their coverage and size rows."""
    rows = get_suite(suite).metrics(records, temperature, seed_parts)
    if conformal is None or records.logits is None or "label" not in records.table:
        return rows
    table = records.table
    return rows + conformal_metrics(records.logits, table["label"].to_numpy(), table["sample_id"].to_numpy(),
                                    ConformalFit.from_dict(conformal), seed_parts)

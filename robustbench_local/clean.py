"""Suite `clean`: accuracy and calibration on unmodified test images."""
from __future__ import annotations

from typing import Any

from .records import Records, classification_records
from .suites import BaseSuite, Condition, TaskContext


class CleanSuite(BaseSuite):
    name = "clean"
    headline = ("acc", "nll", "nll_ts", "ece_15_equal_width", "ece_15_equal_width_ts", "brier_sum")
    report_module = "robustbench_local.clean_report"

    def conditions(self, options: dict[str, Any]) -> list[Condition]:
        return [Condition("clean")]

    def run(self, condition: Condition, ctx: TaskContext) -> Records:
        logits = ctx.clean_logits()
        return classification_records(logits, ctx.data.labels, ctx.data.ids)


SUITE = CleanSuite()

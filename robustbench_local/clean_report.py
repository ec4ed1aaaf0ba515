"""The clean suite's report: clean accuracy and calibration, and the calibration-under-shift figures (reliability
diagrams and ECE vs shift, with the panels the other suites contribute)."""
from __future__ import annotations

from .clean import CleanSuite
from .reports.calibration import ece_vs_shift, reliability
from .reports.plots import draw
from .reports.runs import ReportRun
from .reports.sections import Section, SummaryColumn, lookup
from .reports.table import Table, drop_empty
from .runner.execute import CALIBRATION_ROWS

SUITE = CleanSuite.name
METRICS = ("acc", "nll", "nll_ts", "brier_sum", "brier_sum_ts", "ece_15_equal_width", "ece_15_equal_width_ts",
           "ece_15_equal_mass", "ece_15_equal_mass_ts", "mce", "mce_ts", "classwise_ece", "classwise_ece_ts")
ECE_NOTE = "ECE is ece_15_equal_width on clean test data, raw and with the clean-fitted temperature"


def clean_table(runs: list[ReportRun]) -> Table | None:
    rows = [[m, *(run.cell(SUITE, m, "clean") for run in runs)] for m in METRICS]
    rows.append(["temperature (fitted on val)", *(run.cell(CALIBRATION_ROWS, "temperature") for run in runs)])
    return drop_empty(Table("Clean accuracy and calibration", ["metric", *(r.label for r in runs)], rows,
                            "_ts = with the temperature fitted once on held-out clean data.", key="clean"))


def sections(runs: list[ReportRun], figures: bool) -> list[Section]:
    tables = [t for t in [clean_table(runs)] if t]
    figs = draw((reliability, ece_vs_shift), runs) if figures else []
    return [Section("calibration", "Clean accuracy and calibration", tables, figs)] if tables or figs else []


def reliability_panels(run: ReportRun) -> list[tuple[str, list[str]]]:
    return [("clean", ["clean"])]


def summary_columns(runs: list[ReportRun]) -> list[SummaryColumn]:
    return [SummaryColumn("clean acc", lookup(SUITE, "acc", "clean")),
            SummaryColumn("ECE raw", lookup(SUITE, "ece_15_equal_width", "clean"), ECE_NOTE, calibration=True),
            SummaryColumn("ECE temp-scaled", lookup(SUITE, "ece_15_equal_width_ts", "clean"), ECE_NOTE,
                          calibration=True)]

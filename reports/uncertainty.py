"""Report section "Knowing when it is wrong": selective prediction and conformal coverage, clean and under shift.

Generic over suites: a suite's worst condition is the one of lowest accuracy among those whose records keep logits
(a suite of one condition shows that one, so an unshifted suite gives the clean reference), and the coverage chart
shows every condition that has conformal rows.
"""
from __future__ import annotations

import matplotlib
import numpy as np

from robustbench_local.metrics import Predictions

from .plots import grid, png
from .runs import ReportRun
from .sections import Figure, Section
from .table import Table

TABLE_METRICS = (("acc", "acc"), ("AURC", "aurc"), ("E-AURC", "eaurc"), ("AUGRC", "augrc"),
                 ("misclass. AUROC", "misclassification_auroc"), ("risk @ 90% cov.", "selective_risk_at_90"),
                 ("cov. @ 5% risk", "coverage_at_risk_5"), ("conformal cov. 90", "conformal_coverage_90"),
                 ("set size 90", "conformal_set_size_90"), ("conformal cov. 95", "conformal_coverage_95"),
                 ("set size 95", "conformal_set_size_95"))
NOTE = ("Each suite's worst condition (lowest acc). AURC / E-AURC / AUGRC: area under the risk-coverage curve of the "
        "max-softmax ranking, its excess over the optimal ranking, and its generalised (Traub et al.) form; lower is "
        "better. misclass. AUROC: how well confidence separates right from wrong. Conformal sets (LAC) are fitted on "
        "held-out clean data at 90% / 95%; under shift their coverage shows whether the guarantee survives. All "
        "metrics, their _ts and APS variants, per condition: metrics.csv.")


def worst_conditions(run: ReportRun) -> list[tuple[str, str]]:
    """(suite, condition) of lowest acc in each suite, among conditions whose records keep logits."""
    acc = run.metrics[run.metrics["metric"] == "acc"]
    worst = []
    for suite in dict.fromkeys(acc["suite"]):
        rows = acc[acc["suite"] == suite].sort_values("value", kind="stable")
        found = next((c for c in rows["condition"] if _predictions(run, suite, c) is not None), None)
        if found is not None:
            worst.append((suite, found))
    return worst


def _predictions(run: ReportRun, suite: str, condition: str) -> Predictions | None:
    records = run.records(suite, condition)
    if records is None or records.logits is None or "label" not in records.table or not len(records.table):
        return None
    return Predictions.from_logits(records.logits, records.table["label"].to_numpy())


def risk_coverage(p: Predictions) -> tuple[np.ndarray, np.ndarray]:
    """Coverage k/N and selective risk of the k most confident, k = 1..N (tied confidences averaged, as the metric)."""
    order = np.argsort(-p.confidence, kind="stable")
    ranked, errors = p.confidence[order], 1.0 - p.correct[order]
    cum = np.cumsum(errors)
    ends = np.r_[np.flatnonzero(np.diff(ranked) != 0), len(ranked) - 1]  # last index of each tied run
    starts = np.r_[0, ends[:-1] + 1]
    k = np.arange(1, len(ranked) + 1)
    group = np.searchsorted(ends, k - 1)
    before = np.where(starts[group] > 0, cum[starts[group] - 1], 0.0)
    rate = (cum[ends[group]] - before) / (ends[group] - starts[group] + 1)
    return k / len(k), (before + (k - starts[group]) * rate) / k


def risk_coverage_figure(runs: list[ReportRun]) -> Figure | None:
    panels = [(run, worst_conditions(run)) for run in runs]
    panels = [(run, conds) for run, conds in panels if conds]
    if not panels:
        return None
    fig, axes = grid(len(panels), width=4.6, height=3.4)
    for ax, (run, conds) in zip(axes, panels, strict=True):
        for suite, condition in conds:
            coverage, risk = risk_coverage(_predictions(run, suite, condition))
            ax.plot(coverage, risk, label=f"{suite}: {condition}"[:60])
        ax.set(title=run.label, xlabel="coverage (most confident first)", ylabel="selective risk (error rate)",
               xlim=(0, 1), ylim=(-0.02, 1.02))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return "risk_coverage", "Risk–coverage curves: each suite's worst condition (MSP ranking)", png(fig)


def _levels(runs: list[ReportRun]) -> list[str]:
    names = {m for run in runs for m in run.metrics["metric"].unique()}
    return sorted({m.removeprefix("conformal_coverage_") for m in names
                   if m.startswith("conformal_coverage_") and m.removeprefix("conformal_coverage_").replace(".", "")
                   .isdigit()}, key=float)


def coverage_figure(runs: list[ReportRun]) -> Figure | None:
    levels = _levels(runs)
    if not levels:
        return None
    conditions = list(dict.fromkeys((s, c) for run in runs for s, c in
                                    run.metrics[run.metrics["metric"] == f"conformal_coverage_{levels[0]}"]
                                    [["suite", "condition"]].itertuples(index=False)))
    fig, axes = grid(len(levels), width=min(16.0, 2.5 + 0.28 * len(conditions)), height=3.8, cols=1)
    x = np.arange(len(conditions))
    for ax, level in zip(axes, levels, strict=True):
        for i, run in enumerate(runs):
            rows = run.metrics[run.metrics["metric"] == f"conformal_coverage_{level}"].set_index(["suite", "condition"])
            rows = rows[~rows.index.duplicated()].reindex(conditions)
            y = rows["value"].to_numpy(float)
            err = np.nan_to_num(np.abs(np.vstack([y - rows["ci_low"].to_numpy(float),
                                                  rows["ci_high"].to_numpy(float) - y])))
            ax.errorbar(x + (i - (len(runs) - 1) / 2) * 0.15, y, yerr=err, fmt="o", ms=3, capsize=2, label=run.label)
        ax.axhline(float(level) / 100, color="k", ls="--", lw=1, label=f"nominal {level}%")
        ax.set_xticks(x, [f"{s}: {c}"[:40] for s, c in conditions], rotation=90, fontsize=6)
        ax.set(ylabel=f"coverage of {level}% sets", ylim=(-0.02, 1.02), xlim=(-0.6, len(conditions) - 0.4))
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=7, loc="lower left")
    return "coverage_under_shift", "Conformal coverage under shift (sets fitted on clean held-out data; 95% intervals)", \
        png(fig)


def table(runs: list[ReportRun]) -> Table | None:
    rows = [[run.label, suite, condition, *(run.cell(suite, metric, condition) for _, metric in TABLE_METRICS)]
            for run in runs for suite, condition in worst_conditions(run)]
    if not rows:
        return None
    return Table("Selective prediction and conformal coverage", ["model", "suite", "condition",
                                                                 *(h for h, _ in TABLE_METRICS)],
                 rows, NOTE, label_columns=3, key="uncertainty")


def sections(runs: list[ReportRun], figures: bool = True) -> list[Section]:
    """The section (none when no run has classification logits); figures only when asked."""
    with matplotlib.rc_context({"text.parse_math": False}):  # run and condition names drawn literally
        figs = [f for f in (risk_coverage_figure(runs), coverage_figure(runs)) if f] if figures else []
    tables = [t for t in [table(runs)] if t]
    return [Section("uncertainty", "Knowing when it is wrong: selective prediction and conformal coverage", tables,
                    figs)] if tables or figs else []

"""The corruption suite's report: accuracy per corruption and severity, means per group (table, heatmap, accuracy
vs severity), its summary columns and its calibration-under-shift panels."""
from __future__ import annotations

import numpy as np
from robustbench_local.reports.plots import draw, grid, png
from robustbench_local.reports.runs import ReportRun
from robustbench_local.reports.sections import Figure, Section, ShiftPanel, SummaryColumn, lookup
from robustbench_local.reports.table import Table, drop_empty

from robustbench_local.clean import CleanSuite

from .names import CATEGORIES
from .suite import CorruptionSuite

SUITE = CorruptionSuite.name
MEANS = (("mean corruption acc", "mean_corruption_acc"), ("mean ECE raw", "mean_ece_15_equal_width"),
         ("mean ECE temp-scaled", "mean_ece_15_equal_width_ts"), ("mCE (AlexNet)", "mce_alexnet"),
         ("relative mCE (AlexNet)", "relative_mce_alexnet"))
CLEAN_ROW = "clean (clean acc)"
SUMMARY_NOTE = ("mean corruption acc is the mean over the common corruption × severity conditions evaluated; "
                "mCE needs all 15 common corruptions at severities 1-5")


def _corruption_rows(run: ReportRun):
    return run.rows(SUITE, "acc", where=lambda p: bool(p.get("corruption")))


def corruption_tables(runs: list[ReportRun]) -> list[Table]:
    ps = [p for run in runs for p in _corruption_rows(run)["p"]]
    severities = sorted({int(p["severity"]) for p in ps})
    names = list(dict.fromkeys(p["corruption"] for p in ps))
    columns = [(run, sev, f"severity {sev}" if len(runs) == 1 else f"{run.label} · sev {sev}")
               for run in runs for sev in severities]
    per = Table("Accuracy per corruption and severity", ["corruption", *(h for _, _, h in columns)],
                [[c, *(run.cell(SUITE, "acc", corruption=c, severity=sev) for run, sev, _ in columns)]
                 for c in names], "acc on corrupted test images (on-the-fly unless the data is a precomputed "
                "cifar10c:/imagenetc: set).", key="corruptions")
    groups = ["clean", "common", *CATEGORIES, *(f"severity={s}" for s in severities)]
    agg_rows = []
    for run in runs:
        for g in groups:
            metric_cells = [run.cell(SUITE, m, g) for _, m in MEANS]
            if g == "clean":
                metric_cells[0] = run.cell(SUITE, "acc", "clean")
            agg_rows.append([run.label, CLEAN_ROW if g == "clean" else g, *metric_cells])
    agg = Table("Corruption means", ["model", "group", *(h for h, _ in MEANS)], agg_rows,
                "Means over the conditions of each group; mCE needs all 15 common corruptions at severities 1-5, "
                "and on on-the-fly corruptions it mixes two distributions (AlexNet errors are from ImageNet-C). The "
                "clean row's accuracy is the clean acc of the summary and of the clean suite (the same logits, "
                "computed once).",
                label_columns=2, key="corruption_means")
    return [t for t in (drop_empty(agg), drop_empty(per)) if t is not None]


def _acc_matrix(run: ReportRun, names: list[str], sevs: list[int]) -> np.ndarray:
    rows = _corruption_rows(run)
    matrix = np.full((len(names), len(sevs)), np.nan)
    for p, v in zip(rows["p"], rows["value"], strict=True):
        matrix[names.index(p["corruption"]), sevs.index(int(p["severity"]))] = v
    return matrix


def corruption_heatmap(runs: list[ReportRun]) -> Figure | None:
    ps = [p for run in runs for p in _corruption_rows(run)["p"]]
    if not ps:
        return None
    names = list(dict.fromkeys(p["corruption"] for p in ps))
    sevs = sorted({int(p["severity"]) for p in ps})
    mats = [(run, _acc_matrix(run, names, sevs)) for run in runs if len(_corruption_rows(run))]
    fig, axes = grid(len(mats), width=1.0 + 0.75 * len(sevs), height=0.3 * len(names) + 1.2, cols=4)
    for i, (ax, (run, matrix)) in enumerate(zip(axes, mats, strict=True)):
        im = ax.imshow(matrix, vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
        ax.set_xticks(range(len(sevs)), [str(s) for s in sevs])
        ax.set_yticks(range(len(names)), names if i % 4 == 0 else [""] * len(names), fontsize=8)
        for (r, c), v in np.ndenumerate(matrix):
            if not np.isnan(v):
                ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7)
        ax.set(title=run.label, xlabel="severity")
    fig.colorbar(im, ax=axes, shrink=0.6, label="acc")
    return "corruption_heatmap", "Accuracy per corruption × severity", png(fig, tight=True)


def _severity_series(run: ReportRun, metric: str, clean_metric: str) -> tuple[np.ndarray, np.ndarray]:
    """The metric's mean over common corruptions per severity, with the clean suite's value at severity 0."""
    rows = run.rows(SUITE, metric)
    rows = rows[rows["condition"].str.startswith("severity=")]
    sev = rows["condition"].str.removeprefix("severity=").astype(int).to_numpy()
    clean = run.rows(CleanSuite.name, clean_metric, "clean")
    x, y = list(sev), list(rows["value"])
    if len(clean):
        x, y = [0, *x], [float(clean["value"].iloc[0]), *y]
    order = np.argsort(x)
    return np.asarray(x)[order], np.asarray(y)[order]


def acc_vs_severity(runs: list[ReportRun]) -> Figure | None:
    if not any(len(run.rows(SUITE, "mean_corruption_acc")) for run in runs):
        return None
    fig, (ax,) = grid(1, width=5.5, height=3.4)
    for run in runs:
        x, y = _severity_series(run, "mean_corruption_acc", "acc")
        ax.plot(x, y, marker="o", label=run.label)
    ax.set(xlabel="severity (0 = clean)", ylabel="mean acc over common corruptions", ylim=(-0.02, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return "acc_vs_severity", "Accuracy vs corruption severity", png(fig)


def sections(runs: list[ReportRun], figures: bool) -> list[Section]:
    tables = corruption_tables(runs)
    figs = draw((corruption_heatmap, acc_vs_severity), runs) if figures else []
    return [Section("corruptions", "Common corruptions", tables, figs)] if tables or figs else []


def summary_columns(runs: list[ReportRun]) -> list[SummaryColumn]:
    return [SummaryColumn("mean corruption acc", lookup(SUITE, "mean_corruption_acc", "common"), SUMMARY_NOTE),
            SummaryColumn("mCE (AlexNet)", lookup(SUITE, "mce_alexnet", "common"), SUMMARY_NOTE)]


def reliability_panels(run: ReportRun) -> list[tuple[str, list[str]]]:
    """The corrupted conditions at the highest severity, pooled."""
    corr = _corruption_rows(run)
    if not len(corr):
        return []
    top = max(int(p["severity"]) for p in corr["p"])
    return [(f"corruptions, severity {top} (pooled)",
             list(corr[corr["p"].map(lambda p: int(p["severity"]) == top)]["condition"]))]


def ece_shift_panel(runs: list[ReportRun]) -> ShiftPanel | None:
    if not any(len(run.rows(SUITE, "mean_ece_15_equal_width")) for run in runs):
        return None
    return ShiftPanel("severity (0 = clean)", lambda run, metric: _severity_series(run, f"mean_{metric}", metric))

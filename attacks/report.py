"""The attack suite's report: robust accuracy per threat model (table, curves vs ε), its summary columns and its
calibration-under-shift panels."""
from __future__ import annotations

import numpy as np
from robustbench_local.reports.plots import draw, errorbar, grid, png
from robustbench_local.reports.runs import ReportRun
from robustbench_local.reports.sections import Figure, Section, ShiftPanel, SummaryColumn, lookup
from robustbench_local.reports.table import Table, drop_empty

from .suite import AttackSuite

SUITE = AttackSuite.name
COLUMNS = (("robust acc", "robust_acc"), ("model passes / point", "mean_queries"),
           ("attack success rate", "attack_success_rate"),
           ("ECE raw", "ece_15_equal_width"), ("ECE temp-scaled", "ece_15_equal_width_ts"),
           ("max ‖δ‖∞", "max_perturbation_linf"))
CLEAN_EPS = "0 (clean acc)"
SAME_NUMBER = ("At ε = 0 nothing is attacked: robust acc there is the clean acc of the summary and of the clean suite "
               "(the same logits, computed once).")


def threat_models(runs: list[ReportRun]) -> list[tuple[str, str, float, str]]:
    """(attack, norm, eps, eps_text) of every robust_acc condition with eps > 0 in any run, sorted."""
    seen = {}
    for run in runs:
        for p in run.rows(SUITE, "robust_acc")["p"]:
            if p.get("eps", 0) > 0:
                seen[(p["attack"], p["norm"], p["eps"])] = p.get("eps_text", f"{p['eps']:g}")
    return [(a, n, e, t) for (a, n, e), t in sorted(seen.items())]


def _sweeps(runs: list[ReportRun]) -> list[tuple[str, str]]:
    return sorted({(p["attack"], p["norm"]) for run in runs for p in run.rows(SUITE, "robust_acc")["p"]
                   if p.get("eps", 1) == 0})


def attack_table(runs: list[ReportRun]) -> Table | None:
    rows = []
    for run in runs:
        for attack, norm, eps, text in [(a, n, 0.0, CLEAN_EPS) for a, n in _sweeps(runs)] + threat_models(runs):
            rows.append([run.label, attack, norm, text,
                         *(run.cell(SUITE, m, attack=attack, norm=norm, eps=eps) for _, m in COLUMNS)])
    return drop_empty(Table("Robust accuracy per threat model", ["model", "attack", "norm", "ε",
                                                                 *(h for h, _ in COLUMNS)], rows,
                            "robust_acc: clean-correct and not broken by any attack of the sequence within ε "
                            "(per-point worst case); ε in [0,1] pixel units. " + SAME_NUMBER, label_columns=4,
                            key="attacks"))


def robust_vs_eps(runs: list[ReportRun]) -> Figure | None:
    sweeps = sorted({(p["attack"], p["norm"]) for run in runs for p in run.rows(SUITE, "robust_acc")["p"]})
    if not sweeps:
        return None
    fig, axes = grid(len(sweeps))
    for ax, (attack, norm) in zip(axes, sweeps, strict=True):
        for run in runs:
            rows = run.rows(SUITE, "robust_acc", attack=attack, norm=norm)
            rows = rows.assign(eps=rows["p"].map(lambda p: p["eps"])).sort_values("eps")
            if len(rows):
                errorbar(ax, rows["eps"].to_numpy() * 255 if norm == "Linf" else rows["eps"].to_numpy(), rows,
                         run.label)
        ax.set(title=f"{attack} {norm}", xlabel="ε ×255" if norm == "Linf" else "ε", ylabel="robust acc",
               ylim=(-0.02, 1.02))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return "robust_vs_eps", "Robust accuracy vs ε (95% intervals)", png(fig)


def sections(runs: list[ReportRun], figures: bool) -> list[Section]:
    tables = [t for t in [attack_table(runs)] if t]
    figs = draw((robust_vs_eps,), runs) if figures else []
    return [Section("attacks", "Adversarial robustness", tables, figs)] if tables or figs else []


def summary_columns(runs: list[ReportRun]) -> list[SummaryColumn]:
    return [SummaryColumn(f"robust acc {attack} {norm} ε={text}",
                          lookup(SUITE, "robust_acc", attack=attack, norm=norm, eps=eps))
            for attack, norm, eps, text in threat_models(runs)]


def reliability_panels(run: ReportRun) -> list[tuple[str, list[str]]]:
    """The condition with the largest ε."""
    rows = run.rows(SUITE, "robust_acc")
    if not len(rows):
        return []
    row = rows.loc[rows["p"].map(lambda p: p["eps"]).idxmax()]
    return [(f"attack {row['condition']}", [row["condition"]])]


def _ece_vs_eps(run: ReportRun, metric: str) -> tuple[np.ndarray, np.ndarray]:
    rows = run.rows(SUITE, metric)
    rows = rows.assign(eps=rows["p"].map(lambda p: p["eps"] * 255)).sort_values("eps")
    return rows["eps"].to_numpy(), rows["value"].to_numpy()


def ece_shift_panel(runs: list[ReportRun]) -> ShiftPanel | None:
    if not any(len(run.rows(SUITE, "ece_15_equal_width")) for run in runs):
        return None
    return ShiftPanel("attack ε ×255 (all attacks)", _ece_vs_eps)

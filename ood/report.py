"""The OOD suite's report: near/far means and AUROC per set (tables, score histograms, ROC curves) and its summary
columns, all for one headline detector."""
from __future__ import annotations

import numpy as np
from robustbench_local.reports.plots import draw, grid, png
from robustbench_local.reports.runs import ReportRun
from robustbench_local.reports.sections import Figure, Section, SummaryColumn, lookup
from robustbench_local.reports.table import Table, drop_empty
from sklearn.metrics import roc_curve

from .suite import OODSuite

SUITE = OODSuite.name
HEADLINE_DETECTORS = ("energy", "msp", "maxlogit")  # the detector shown in the summary, first one present
KINDS = ("near", "far")
MEANS = (("AUROC", "auroc_mean"), ("FPR@95", "fpr_at_95tpr_id_mean"), ("AUPR-out", "aupr_out_mean"))


def headline_detector(runs: list[ReportRun]) -> str | None:
    """The detector shown in the summary: the first of HEADLINE_DETECTORS that every run with OOD results has,
    else any such shared one (runs without the OOD suite do not hide the others' figures)."""
    sets = [set(run.rows(SUITE)["p"].map(lambda p: p.get("detector")).dropna()) for run in runs]
    sets = [s for s in sets if s]
    shared = set.intersection(*sets) if sets else set()
    for name in HEADLINE_DETECTORS:
        if name in shared:
            return name
    return sorted(shared)[0] if shared else None


def ood_tables(runs: list[ReportRun]) -> list[Table]:
    detectors = list(dict.fromkeys(p["detector"] for run in runs for p in run.rows(SUITE, "auroc")["p"]
                                   if p.get("detector")))
    means = Table("OOD detection, near/far means", ["model", "detector", *(f"{h} {k}" for h, _ in MEANS
                                                                             for k in KINDS)],
                  [[run.label, d, *(run.cell(SUITE, m, f"{k}:{d}") for _, m in MEANS for k in KINDS)]
                   for run in runs for d in detectors],
                  "ID test samples are negatives, OOD positives; FPR@95 = fpr_at_95tpr_id (fraction of OOD accepted "
                  "at the threshold keeping 95% of ID).", label_columns=2, key="ood_means")
    sets = list(dict.fromkeys((p["ood_set"], p.get("kind", "")) for run in runs for p in run.rows(SUITE, "auroc")["p"]
                              if p.get("ood_set")))
    per_set = Table("AUROC per OOD set", ["model", "detector", *(f"{s} ({k})" for s, k in sets)],
                    [[run.label, d, *(run.cell(SUITE, "auroc", ood_set=s, detector=d) for s, _ in sets)]
                     for run in runs for d in detectors], "auroc (= sklearn roc_auc_score, OOD positive).",
                    label_columns=2, key="ood_sets")
    return [t for t in (drop_empty(means), drop_empty(per_set)) if t is not None]


def _ood_scores(run: ReportRun, detector: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    rows = run.rows(SUITE, "auroc")
    out = []
    for cond, p in zip(rows["condition"], rows["p"], strict=True):
        rec = run.records(SUITE, cond) if p.get("detector") == detector else None
        if rec is not None:
            t = rec.table
            out.append((f"{p['ood_set']} ({p.get('kind', '')})", t["score"].to_numpy(), t["is_ood"].to_numpy(bool)))
    return out


def _ood_panels(runs: list[ReportRun]) -> tuple[str | None, list]:
    """The headline detector and, per run that has it, its (set name, scores, is_ood) triples."""
    detector = headline_detector(runs)
    data = [(run, _ood_scores(run, detector)) for run in runs] if detector else []
    return detector, [(run, sets) for run, sets in data if sets]


def ood_histograms(runs: list[ReportRun]) -> Figure | None:
    detector, data = _ood_panels(runs)
    if not data:
        return None
    fig, axes = grid(len(data), width=5.0, height=3.4, cols=2)
    for ax, (run, sets) in zip(axes, data, strict=True):
        scores = np.concatenate([s for _, s, _ in sets])
        bins = np.linspace(np.nanmin(scores), np.nanmax(scores), 40)
        ax.hist(sets[0][1][~sets[0][2]], bins=bins, density=True, alpha=0.6, color="black", label="ID test")
        for name, s, is_ood in sets:
            ax.hist(s[is_ood], bins=bins, density=True, histtype="step", lw=1.4, label=name)
        ax.set(title=f"{run.label}: {detector}", xlabel="score (higher = more OOD)", ylabel="density")
        ax.legend(fontsize=7)
    return "ood_histograms", f"OOD score histograms ({detector})", png(fig)


def ood_roc(runs: list[ReportRun]) -> Figure | None:
    detector, data = _ood_panels(runs)
    if not data:
        return None
    fig, axes = grid(len(data), width=4.2, height=3.6, cols=3)
    for ax, (run, sets) in zip(axes, data, strict=True):
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
        for name, s, is_ood in sets:
            fpr, tpr, _ = roc_curve(is_ood, s)
            ax.plot(fpr, tpr, label=name)
        ax.set(title=f"{run.label}: {detector}", xlabel="false positive rate (ID flagged)",
               ylabel="true positive rate (OOD flagged)")
        ax.legend(fontsize=7, loc="lower right")
    return "ood_roc", f"OOD ROC curves ({detector}, OOD positive)", png(fig)


def sections(runs: list[ReportRun], figures: bool) -> list[Section]:
    tables = ood_tables(runs)
    figs = draw((ood_histograms, ood_roc), runs) if figures else []
    return [Section("ood", "Out-of-distribution detection", tables, figs)] if tables or figs else []


def summary_columns(runs: list[ReportRun]) -> list[SummaryColumn]:
    detector = headline_detector(runs)
    if detector is None:
        return []
    note = (f"near/far OOD columns are means over the OOD sets of that kind for the {detector} detector; "
            "FPR@95 is fpr_at_95tpr_id")
    return [SummaryColumn(f"{h} {kind} ({detector})", lookup(SUITE, m, f"{kind}:{detector}"), note)
            for kind in KINDS for h, m in (("AUROC", "auroc_mean"), ("FPR@95", "fpr_at_95tpr_id_mean"))]

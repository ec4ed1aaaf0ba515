"""Per-suite detail tables, laid out from the metrics table only (no metric is computed here)."""
from __future__ import annotations

from .runs import ReportRun
from .summary import threat_models
from .table import MISSING, Table

CLEAN_METRICS = ("acc", "nll", "nll_ts", "brier_sum", "brier_sum_ts", "ece_15_equal_width", "ece_15_equal_width_ts",
                 "ece_15_equal_mass", "ece_15_equal_mass_ts", "mce", "mce_ts", "classwise_ece", "classwise_ece_ts")
ATTACK_METRICS = (("robust acc", "robust_acc"), ("model passes / point", "mean_queries"),
                  ("attack success rate", "attack_success_rate"),
                  ("ECE raw", "ece_15_equal_width"), ("ECE temp-scaled", "ece_15_equal_width_ts"),
                  ("max ‖δ‖∞", "max_perturbation_linf"))
CORRUPTION_SUMMARY = (("mean corruption acc", "mean_corruption_acc"), ("mean ECE raw", "mean_ece_15_equal_width"),
                      ("mean ECE temp-scaled", "mean_ece_15_equal_width_ts"), ("mCE (AlexNet)", "mce_alexnet"),
                      ("relative mCE (AlexNet)", "relative_mce_alexnet"))
OOD_SUMMARY = (("AUROC", "auroc_mean"), ("FPR@95", "fpr_at_95tpr_id_mean"), ("AUPR-out", "aupr_out_mean"))


def _drop_empty(table: Table) -> Table | None:
    """Drop value columns that no row fills; None when no row has any value."""
    k = table.label_columns
    keep = [i for i in range(len(table.columns)) if i < k or any(r[i] != MISSING for r in table.rows)]
    table.columns = [table.columns[i] for i in keep]
    table.rows = [[r[i] for i in keep] for r in table.rows if any(v != MISSING for v in r[k:])]
    return table if table.rows and len(keep) > k else None


def clean_table(runs: list[ReportRun]) -> Table | None:
    rows = [[m, *(run.cell("clean", m, "clean") for run in runs)] for m in CLEAN_METRICS]
    rows.append(["temperature (fitted on val)", *(run.cell("calibration", "temperature") for run in runs)])
    return _drop_empty(Table("Clean accuracy and calibration", ["metric", *(r.label for r in runs)], rows,
                             "_ts = with the temperature fitted once on held-out clean data.", key="clean"))


def attack_table(runs: list[ReportRun]) -> Table | None:
    rows = []
    for run in runs:
        for attack, norm, eps, text in [(a, n, 0.0, "0") for a, n in _sweeps(runs)] + threat_models(runs):
            rows.append([run.label, attack, norm, text,
                         *(run.cell("attacks", m, attack=attack, norm=norm, eps=eps) for _, m in ATTACK_METRICS)])
    return _drop_empty(Table("Robust accuracy per threat model", ["model", "attack", "norm", "ε",
                                                                  *(h for h, _ in ATTACK_METRICS)], rows,
                             "robust_acc: clean-correct and not broken by any attack of the sequence within ε "
                             "(per-point worst case); ε in [0,1] pixel units.", label_columns=4, key="attacks"))


def _sweeps(runs: list[ReportRun]) -> list[tuple[str, str]]:
    return sorted({(p["attack"], p["norm"]) for run in runs for p in run.rows("attacks", "robust_acc")["p"]
                   if p.get("eps", 1) == 0})


def corruption_tables(runs: list[ReportRun]) -> list[Table]:
    severities = sorted({int(p["severity"]) for run in runs for p in run.rows("corruptions", "acc")["p"]
                         if p.get("corruption")})
    names = list(dict.fromkeys(p["corruption"] for run in runs for p in run.rows("corruptions", "acc")["p"]
                               if p.get("corruption")))
    columns = [(run, sev, f"severity {sev}" if len(runs) == 1 else f"{run.label} · sev {sev}")
               for run in runs for sev in severities]
    per = Table("Accuracy per corruption and severity", ["corruption", *(h for _, _, h in columns)],
                [[c, *(run.cell("corruptions", "acc", corruption=c, severity=sev) for run, sev, _ in columns)]
                 for c in names], "acc on corrupted test images (on-the-fly unless the data is a precomputed "
                "cifar10c:/imagenetc: set).", key="corruptions")
    groups = ["clean", "common", "noise", "blur", "weather", "digital", "validation",
              *(f"severity={s}" for s in severities)]
    agg_rows = []
    for run in runs:
        for g in groups:
            metric_cells = [run.cell("corruptions", m, g) for _, m in CORRUPTION_SUMMARY]
            if g == "clean":
                metric_cells[0] = run.cell("corruptions", "acc", "clean")
            agg_rows.append([run.label, g, *metric_cells])
    agg = Table("Corruption means", ["model", "group", *(h for h, _ in CORRUPTION_SUMMARY)], agg_rows,
                "Means over the conditions of each group; mCE needs all 15 common corruptions at severities 1-5, "
                "and on on-the-fly corruptions it mixes two distributions (AlexNet errors are from ImageNet-C).",
                label_columns=2, key="corruption_means")
    return [t for t in (_drop_empty(agg), _drop_empty(per)) if t is not None]


def ood_tables(runs: list[ReportRun]) -> list[Table]:
    detectors = list(dict.fromkeys(p["detector"] for run in runs for p in run.rows("ood", "auroc")["p"]
                                   if p.get("detector")))
    kinds = ("near", "far")
    means = Table("OOD detection, near/far means", ["model", "detector", *(f"{h} {k}" for h, _ in OOD_SUMMARY
                                                                             for k in kinds)],
                  [[run.label, d, *(run.cell("ood", m, f"{k}:{d}") for _, m in OOD_SUMMARY for k in kinds)]
                   for run in runs for d in detectors],
                  "ID test samples are negatives, OOD positives; FPR@95 = fpr_at_95tpr_id (fraction of OOD accepted "
                  "at the threshold keeping 95% of ID).", label_columns=2, key="ood_means")
    sets = list(dict.fromkeys((p["ood_set"], p.get("kind", "")) for run in runs for p in run.rows("ood", "auroc")["p"]
                              if p.get("ood_set")))
    per_set = Table("AUROC per OOD set", ["model", "detector", *(f"{s} ({k})" for s, k in sets)],
                    [[run.label, d, *(run.cell("ood", "auroc", ood_set=s, detector=d) for s, _ in sets)]
                     for run in runs for d in detectors], "auroc (= sklearn roc_auc_score, OOD positive).",
                    label_columns=2, key="ood_sets")
    return [t for t in (_drop_empty(means), _drop_empty(per_set)) if t is not None]

"""Report figures: each function returns (key, title, PNG bytes) or None if the runs lack the data.

Figures are built with matplotlib's object API (`matplotlib.figure.Figure`, rendered to PNG by Agg), so
the report neither needs a display nor changes the pyplot backend of the process that calls it. Text is
drawn literally (no mathtext), so labels made of run names and paths show as they are, whatever they hold.
"""
from __future__ import annotations

import io

import matplotlib
import numpy as np
from matplotlib.figure import Figure as MplFigure
from sklearn.metrics import roc_curve

from robustbench_local.metrics import Predictions, reliability_table

from .runs import ReportRun
from .summary import headline_detector

Figure = tuple[str, str, bytes]
DPI = 100


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _grid(n: int, width: float = 4.2, height: float = 3.2, cols: int = 3):
    cols = min(cols, n)
    rows = -(-n // cols)
    fig = MplFigure(figsize=(width * cols, height * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _errorbar(ax, x, rows, label, marker="o"):
    y = rows["value"].to_numpy()
    err = np.vstack([y - rows["ci_low"].to_numpy(), rows["ci_high"].to_numpy() - y])
    ax.errorbar(x, y, yerr=np.nan_to_num(np.abs(err)), marker=marker, capsize=3, label=label)


def robust_vs_eps(runs: list[ReportRun]) -> Figure | None:
    sweeps = sorted({(p["attack"], p["norm"]) for run in runs for p in run.rows("attacks", "robust_acc")["p"]})
    if not sweeps:
        return None
    fig, axes = _grid(len(sweeps))
    for ax, (attack, norm) in zip(axes, sweeps, strict=True):
        for run in runs:
            rows = run.rows("attacks", "robust_acc", attack=attack, norm=norm)
            rows = rows.assign(eps=rows["p"].map(lambda p: p["eps"])).sort_values("eps")
            if len(rows):
                _errorbar(ax, rows["eps"].to_numpy() * 255 if norm == "Linf" else rows["eps"].to_numpy(), rows,
                          run.label)
        ax.set(title=f"{attack} {norm}", xlabel="ε ×255" if norm == "Linf" else "ε", ylabel="robust acc",
               ylim=(-0.02, 1.02))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return "robust_vs_eps", "Robust accuracy vs ε (95% intervals)", _png(fig)


def _corruption_rows(run: ReportRun):
    return run.rows("corruptions", "acc", where=lambda p: bool(p.get("corruption")))


def _acc_matrix(run: ReportRun, names: list[str], sevs: list[int]) -> tuple[list[str], list[int], np.ndarray]:
    rows = _corruption_rows(run)
    grid = np.full((len(names), len(sevs)), np.nan)
    for p, v in zip(rows["p"], rows["value"], strict=True):
        grid[names.index(p["corruption"]), sevs.index(int(p["severity"]))] = v
    return names, sevs, grid


def corruption_heatmap(runs: list[ReportRun]) -> Figure | None:
    ps = [p for run in runs for p in _corruption_rows(run)["p"]]
    if not ps:
        return None
    names = list(dict.fromkeys(p["corruption"] for p in ps))
    sevs = sorted({int(p["severity"]) for p in ps})
    mats = [(run, *_acc_matrix(run, names, sevs)) for run in runs if len(_corruption_rows(run))]
    fig, axes = _grid(len(mats), width=1.0 + 0.75 * len(sevs), height=0.3 * len(names) + 1.2, cols=4)
    for i, (ax, (run, names, sevs, grid)) in enumerate(zip(axes, mats, strict=True)):
        im = ax.imshow(grid, vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
        ax.set_xticks(range(len(sevs)), [str(s) for s in sevs])
        ax.set_yticks(range(len(names)), names if i % 4 == 0 else [""] * len(names), fontsize=8)
        for (i, j), v in np.ndenumerate(grid):
            if not np.isnan(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7)
        ax.set(title=run.label, xlabel="severity")
    fig.colorbar(im, ax=axes, shrink=0.6, label="acc")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return "corruption_heatmap", "Accuracy per corruption × severity", buf.getvalue()


def _severity_series(run: ReportRun, metric: str, clean_metric: str) -> tuple[np.ndarray, np.ndarray]:
    rows = run.rows("corruptions", metric)
    rows = rows[rows["condition"].str.startswith("severity=")]
    sev = rows["condition"].str.removeprefix("severity=").astype(int).to_numpy()
    clean = run.rows("clean", clean_metric, "clean")
    x, y = list(sev), list(rows["value"])
    if len(clean):
        x, y = [0, *x], [float(clean["value"].iloc[0]), *y]
    order = np.argsort(x)
    return np.asarray(x)[order], np.asarray(y)[order]


def acc_vs_severity(runs: list[ReportRun]) -> Figure | None:
    if not any(len(run.rows("corruptions", "mean_corruption_acc")) for run in runs):
        return None
    fig, (ax,) = _grid(1, width=5.5, height=3.4)
    for run in runs:
        x, y = _severity_series(run, "mean_corruption_acc", "acc")
        ax.plot(x, y, marker="o", label=run.label)
    ax.set(xlabel="severity (0 = clean)", ylabel="mean acc over common corruptions", ylim=(-0.02, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return "acc_vs_severity", "Accuracy vs corruption severity", _png(fig)


def ece_vs_shift(runs: list[ReportRun]) -> Figure | None:
    panels = []
    if any(len(run.rows("corruptions", "mean_ece_15_equal_width")) for run in runs):
        panels.append("severity")
    if any(len(run.rows("attacks", "ece_15_equal_width")) for run in runs):
        panels.append("eps")
    if not panels:
        return None
    fig, axes = _grid(len(panels), width=5.0, height=3.4)
    for ax, panel in zip(axes, panels, strict=True):
        for i, run in enumerate(runs):
            color = f"C{i}"
            for suffix, style in (("", "-"), ("_ts", "--")):
                if panel == "severity":
                    x, y = _severity_series(run, f"mean_ece_15_equal_width{suffix}", f"ece_15_equal_width{suffix}")
                else:
                    rows = run.rows("attacks", f"ece_15_equal_width{suffix}")
                    rows = rows.assign(eps=rows["p"].map(lambda p: p["eps"] * 255)).sort_values("eps")
                    x, y = rows["eps"].to_numpy(), rows["value"].to_numpy()
                ax.plot(x, y, style, marker="o", color=color,
                        label=f"{run.label} {'temp-scaled' if suffix else 'raw'}")
        ax.set(xlabel="severity (0 = clean)" if panel == "severity" else "attack ε ×255 (all attacks)",
               ylabel="ECE (15 equal-width bins)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return "ece_vs_shift", "ECE vs shift intensity (solid raw, dashed temperature-scaled)", _png(fig)


def _pooled(run: ReportRun, suite: str, conditions: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
    parts = [run.records(suite, c) for c in conditions]
    parts = [p for p in parts if p is not None and p.logits is not None and len(p.table)]
    if not parts:
        return None
    return np.concatenate([p.logits for p in parts]), np.concatenate([p.table["label"].to_numpy() for p in parts])


def shift_conditions(run: ReportRun) -> list[tuple[str, str, list[str]]]:
    """(panel title, suite, conditions): clean, corruptions at the highest severity (pooled), the largest attack ε."""
    out = [("clean", "clean", ["clean"])]
    corr = _corruption_rows(run)
    if len(corr):
        top = max(int(p["severity"]) for p in corr["p"])
        out.append((f"corruptions, severity {top} (pooled)", "corruptions",
                    list(corr[corr["p"].map(lambda p: int(p["severity"]) == top)]["condition"])))
    att = run.rows("attacks", "robust_acc")
    if len(att):
        row = att.loc[att["p"].map(lambda p: p["eps"]).idxmax()]
        out.append((f"attack {row['condition']}", "attacks", [row["condition"]]))
    return out


def reliability(runs: list[ReportRun]) -> Figure | None:
    panels = [(run, title, suite, conds) for run in runs for title, suite, conds in shift_conditions(run)]
    panels = [(run, title, data) for run, title, suite, conds in panels
              if (data := _pooled(run, suite, conds)) is not None]
    if not panels:
        return None
    fig, axes = _grid(len(panels), width=3.6, height=3.4, cols=3)
    for ax, (run, title, (logits, labels)) in zip(axes, panels, strict=True):
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, label="perfect calibration")
        for t, label, style in ((1.0, "raw", {"alpha": 0.55, "color": "C0"}),
                                (run.temperature, "temp-scaled", {"fill": False, "edgecolor": "C1", "lw": 1.4})):
            if t is None:
                continue
            table = [r for r in reliability_table(Predictions.from_logits(logits, labels, t)) if r["count"]]
            ax.bar([r["bin_low"] for r in table], [r["accuracy"] for r in table], width=table[0]["bin_high"] -
                   table[0]["bin_low"] if table else 0.0, align="edge", label=label, **style)
        ax.set(title=f"{run.label}\n{title} (n={len(labels)})", xlabel="confidence", ylabel="accuracy",
               xlim=(0, 1), ylim=(0, 1))
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7, loc="upper left")
    return "reliability", "Reliability diagrams, clean and under shift (15 equal-width bins)", _png(fig)


def _ood_scores(run: ReportRun, detector: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    rows = run.rows("ood", "auroc")
    out = []
    for cond, p in zip(rows["condition"], rows["p"], strict=True):
        rec = run.records("ood", cond) if p.get("detector") == detector else None
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
    fig, axes = _grid(len(data), width=5.0, height=3.4, cols=2)
    for ax, (run, sets) in zip(axes, data, strict=True):
        scores = np.concatenate([s for _, s, _ in sets])
        bins = np.linspace(np.nanmin(scores), np.nanmax(scores), 40)
        ax.hist(sets[0][1][~sets[0][2]], bins=bins, density=True, alpha=0.6, color="black", label="ID test")
        for name, s, is_ood in sets:
            ax.hist(s[is_ood], bins=bins, density=True, histtype="step", lw=1.4, label=name)
        ax.set(title=f"{run.label}: {detector}", xlabel="score (higher = more OOD)", ylabel="density")
        ax.legend(fontsize=7)
    return "ood_histograms", f"OOD score histograms ({detector})", _png(fig)


def ood_roc(runs: list[ReportRun]) -> Figure | None:
    detector, data = _ood_panels(runs)
    if not data:
        return None
    fig, axes = _grid(len(data), width=4.2, height=3.6, cols=3)
    for ax, (run, sets) in zip(axes, data, strict=True):
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
        for name, s, is_ood in sets:
            fpr, tpr, _ = roc_curve(is_ood, s)
            ax.plot(fpr, tpr, label=name)
        ax.set(title=f"{run.label}: {detector}", xlabel="false positive rate (ID flagged)",
               ylabel="true positive rate (OOD flagged)")
        ax.legend(fontsize=7, loc="lower right")
    return "ood_roc", f"OOD ROC curves ({detector}, OOD positive)", _png(fig)


SUITE_FIGURES = {"attacks": (robust_vs_eps,), "corruptions": (corruption_heatmap, acc_vs_severity),
                 "calibration": (reliability, ece_vs_shift), "ood": (ood_histograms, ood_roc)}


def section_figures(key: str, runs: list[ReportRun]) -> list[Figure]:
    """The figures of one report section (a key of SUITE_FIGURES) that the runs have the data for."""
    with matplotlib.rc_context({"text.parse_math": False}):
        return [f for fn in SUITE_FIGURES[key] if (f := fn(runs)) is not None]

"""Calibration under shift, across suites: reliability diagrams and ECE against shift intensity, drawn from the
panels each suite contributes (`reliability_panels`, `ece_shift_panel`)."""
from __future__ import annotations

import numpy as np

from robustbench_local.metrics import Predictions, reliability_table

from .plots import grid, png
from .runs import ReportRun
from .sections import Figure, reliability_views, shift_panels


def _pooled(run: ReportRun, suite: str, conditions: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
    parts = [run.records(suite, c) for c in conditions]
    parts = [p for p in parts if p is not None and p.logits is not None and len(p.table)]
    if not parts:
        return None
    return np.concatenate([p.logits for p in parts]), np.concatenate([p.table["label"].to_numpy() for p in parts])


def reliability(runs: list[ReportRun]) -> Figure | None:
    """Reliability diagrams (raw and temperature-scaled) of every suite's panels, per run."""
    panels = [(run, title, suite, conds) for run in runs for title, suite, conds in reliability_views(run)]
    panels = [(run, title, data) for run, title, suite, conds in panels
              if (data := _pooled(run, suite, conds)) is not None]
    if not panels:
        return None
    fig, axes = grid(len(panels), width=3.6, height=3.4, cols=3)
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
    return "reliability", "Reliability diagrams, clean and under shift (15 equal-width bins)", png(fig)


def ece_vs_shift(runs: list[ReportRun]) -> Figure | None:
    """ECE (15 equal-width bins), raw and temperature-scaled, against each suite's shift intensity."""
    panels = shift_panels(runs)
    if not panels:
        return None
    fig, axes = grid(len(panels), width=5.0, height=3.4)
    for ax, panel in zip(axes, panels, strict=True):
        for i, run in enumerate(runs):
            for suffix, style in (("", "-"), ("_ts", "--")):
                x, y = panel.curve(run, f"ece_15_equal_width{suffix}")
                ax.plot(x, y, style, marker="o", color=f"C{i}",
                        label=f"{run.label} {'temp-scaled' if suffix else 'raw'}")
        ax.set(xlabel=panel.xlabel, ylabel="ECE (15 equal-width bins)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return "ece_vs_shift", "ECE vs shift intensity (solid raw, dashed temperature-scaled)", png(fig)

"""Figure helpers shared by the suites' report modules: each figure is (key, title, PNG bytes).

Figures are built with matplotlib's object API (`matplotlib.figure.Figure`, rendered to PNG by Agg), so
the report neither needs a display nor changes the pyplot backend of the process that calls it. Text is
drawn literally (no mathtext), so labels made of run names and paths show as they are, whatever they hold.
"""
from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure as MplFigure

from .runs import ReportRun
from .sections import Figure

DPI = 100


def png(fig, tight: bool = False) -> bytes:
    """`fig` as PNG bytes (`tight`: cropped to its drawn content, for figures with a colorbar)."""
    buf = io.BytesIO()
    if tight:
        fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    else:
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def grid(n: int, width: float = 4.2, height: float = 3.2, cols: int = 3):
    """A figure of `n` panels, `cols` per row; returns (figure, the n axes)."""
    cols = min(cols, n)
    rows = -(-n // cols)
    fig = MplFigure(figsize=(width * cols, height * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def errorbar(ax, x, rows, label, marker="o"):
    """Metric rows' values at `x` with their 95% intervals as error bars."""
    y = rows["value"].to_numpy()
    err = np.vstack([y - rows["ci_low"].to_numpy(), rows["ci_high"].to_numpy() - y])
    ax.errorbar(x, y, yerr=np.nan_to_num(np.abs(err)), marker=marker, capsize=3, label=label)


def draw(makers: Sequence[Callable[[list[ReportRun]], Figure | None]], runs: list[ReportRun]) -> list[Figure]:
    """The figures of `makers` that the runs have the data for (None: no data), with text drawn literally."""
    with matplotlib.rc_context({"text.parse_math": False}):
        return [f for make in makers if (f := make(runs)) is not None]

"""The side-by-side summary: one row per run, one column per headline figure, each with its interval."""
from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from .runs import ReportRun
from .table import MISSING, Cell, Table

HEADLINE_DETECTORS = ("energy", "msp", "maxlogit")  # the OOD detector shown in the summary, first one present
Lookup = Callable[[ReportRun], Cell | str]


def _lookup(suite: str, metric: str, condition: str | None = None, **params) -> Lookup:
    return lambda run: run.cell(suite, metric, condition, **params)


def threat_models(runs: list[ReportRun]) -> list[tuple[str, str, float, str]]:
    """(attack, norm, eps, eps_text) of every robust_acc condition with eps > 0 in any run, sorted."""
    seen = {}
    for run in runs:
        for p in run.rows("attacks", "robust_acc")["p"]:
            if p.get("eps", 0) > 0:
                seen[(p["attack"], p["norm"], p["eps"])] = p.get("eps_text", f"{p['eps']:g}")
    return [(a, n, e, t) for (a, n, e), t in sorted(seen.items())]


def headline_detector(runs: list[ReportRun]) -> str | None:
    """The detector shown in the summary: the first of HEADLINE_DETECTORS that every run with OOD results has,
    else any such shared one (runs without the OOD suite do not hide the others' figures)."""
    sets = [set(run.rows("ood")["p"].map(lambda p: p.get("detector")).dropna()) for run in runs]
    sets = [s for s in sets if s]
    shared = set.intersection(*sets) if sets else set()
    for name in HEADLINE_DETECTORS:
        if name in shared:
            return name
    return sorted(shared)[0] if shared else None


def flags(run: ReportRun) -> str:
    """Names of the sanity flags that fired (flag_* rows with value 1), with their condition."""
    m = run.metrics
    fired = m[m["metric"].str.startswith("flag_") & (m["value"] >= 1)]
    return ", ".join(f"{r.metric[5:]} ({r.condition})" for r in fired.itertuples()) or "none"


def summary_columns(runs: list[ReportRun]) -> list[tuple[str, Lookup]]:
    """(header, lookup) of every summary column that at least one run can fill."""
    cols: list[tuple[str, Lookup]] = [("clean acc", _lookup("clean", "acc", "clean"))]
    for attack, norm, eps, text in threat_models(runs):
        cols.append((f"robust acc {attack} {norm} ε={text}",
                     _lookup("attacks", "robust_acc", attack=attack, norm=norm, eps=eps)))
    cols.append(("mean corruption acc", _lookup("corruptions", "mean_corruption_acc", "common")))
    cols.append(("mCE (AlexNet)", _lookup("corruptions", "mce_alexnet", "common")))  # needs severities 1-5
    detector = headline_detector(runs)
    if detector is not None:
        for kind in ("near", "far"):
            cols.append((f"AUROC {kind} ({detector})", _lookup("ood", "auroc_mean", f"{kind}:{detector}")))
            cols.append((f"FPR@95 {kind} ({detector})", _lookup("ood", "fpr_at_95tpr_id_mean", f"{kind}:{detector}")))
    cols.append(("ECE raw", _lookup("clean", "ece_15_equal_width", "clean")))
    cols.append(("ECE temp-scaled", _lookup("clean", "ece_15_equal_width_ts", "clean")))
    cols = [(h, get) for h, get in cols if any(get(run) != MISSING for run in runs)]
    return [*cols, ("flags", flags)]


def summary_table(runs: list[ReportRun]) -> Table:
    """Rows = runs; the headline figures side by side."""
    cols = summary_columns(runs)
    rows = [[run.label, *(get(run) for _, get in cols)] for run in runs]
    detector = headline_detector(runs)
    note = ("Values are fractions with bootstrap 95% intervals [low, high]; near/far OOD columns are means over "
            "the OOD sets of that kind" + (f" for the {detector} detector" if detector else "") +
            "; FPR@95 is fpr_at_95tpr_id; ECE is ece_15_equal_width on clean test data, raw and with the "
            "clean-fitted temperature. Means over conditions (mean corruption acc, mCE) carry no interval.")
    return Table("Summary", ["model", *(h for h, _ in cols)], rows, note, key="summary")


def long_rows(runs: list[ReportRun]) -> pd.DataFrame:
    """Every metric row of every run with the run label (the report's csv/json payload)."""
    frames = [run.metrics.drop(columns=["p"]).assign(run=run.label, run_dir=str(run.result.root)) for run in runs]
    return pd.concat(frames, ignore_index=True)

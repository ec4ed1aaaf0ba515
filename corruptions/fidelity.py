"""Fidelity report: the fast backend against the reference on the same images, per corruption x severity.

Deterministic corruptions must match the reference's pixels (PSNR >= 40 dB). Random ones use different random
streams, so they are compared in distribution: the per-pixel perturbation (corrupted - clean, over all pixels of
all images) must have mean within 5% of the reference perturbation's RMS (a mean near zero has no meaningful
relative error) and standard deviation within 5% of the reference's. With a model, accuracies on both outputs are
compared too: mean over everything within 1 point, each corruption's mean over severities within 3 points.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .api import corrupt_images
from .names import ALL, DETERMINISTIC, SEVERITIES

PSNR_MIN = 40.0
STAT_TOLERANCE = 0.05
ACC_MEAN_POINTS, ACC_CORRUPTION_POINTS = 1.0, 3.0


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB between two uint8 arrays (inf when identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


@dataclass
class FidelityRow:
    corruption: str
    severity: int
    psnr: float
    mean_ref: float
    mean_fast: float
    std_ref: float
    std_fast: float
    acc_ref: float | None = None
    acc_fast: float | None = None

    @property
    def deterministic(self) -> bool:
        return self.corruption in DETERMINISTIC

    @property
    def passed(self) -> bool:
        """PSNR bound (deterministic) or perturbation-statistics bound (random)."""
        return self.within(STAT_TOLERANCE)

    def within(self, tolerance: float) -> bool:
        """The row's bound, random rows with a relative `tolerance` on the perturbation statistics."""
        if self.deterministic:
            return self.psnr >= PSNR_MIN
        rms = float(np.hypot(self.mean_ref, self.std_ref))
        return (abs(self.mean_fast - self.mean_ref) <= tolerance * rms
                and abs(self.std_fast - self.std_ref) <= tolerance * self.std_ref)


def compare(images: np.ndarray, ids: np.ndarray, seed: int, params: str,
            predict: Callable[[np.ndarray], np.ndarray] | None = None, labels: np.ndarray | None = None,
            corruptions: tuple[str, ...] = ALL, severities: tuple[int, ...] = SEVERITIES,
            workers: int | None = 0, progress: Callable[[str], None] | None = None) -> list[FidelityRow]:
    """One row per corruption x severity; `predict` (uint8 NHWC -> predicted labels) adds accuracies."""
    rows = []
    clean = images.astype(np.float64)
    for name in corruptions:
        for s in severities:
            ref = corrupt_images(images, name, s, seed, ids, params, backend="reference", workers=workers)
            fast = corrupt_images(images, name, s, seed, ids, params, backend="fast")
            pr, pf = ref - clean, fast - clean
            row = FidelityRow(name, s, psnr(ref, fast), float(pr.mean()), float(pf.mean()), float(pr.std()),
                              float(pf.std()))
            if predict is not None:
                row.acc_ref = float(np.mean(predict(ref) == labels))
                row.acc_fast = float(np.mean(predict(fast) == labels))
            rows.append(row)
            if progress is not None:
                progress(f"{name}/{s}")
    return rows


def accuracy_checks(rows: list[FidelityRow]) -> list[tuple[str, float, float, float, bool]]:
    """(scope, acc_ref, acc_fast, bound in points, passed) for the overall mean and each corruption's mean."""
    rows = [r for r in rows if r.acc_ref is not None]
    if not rows:
        return []
    checks = []
    groups = [("mean (all)", rows, ACC_MEAN_POINTS)] + [
        (name, [r for r in rows if r.corruption == name], ACC_CORRUPTION_POINTS)
        for name in dict.fromkeys(r.corruption for r in rows)]
    for scope, group, bound in groups:
        ref = 100 * float(np.mean([r.acc_ref for r in group]))
        fast = 100 * float(np.mean([r.acc_fast for r in group]))
        checks.append((scope, ref, fast, bound, abs(ref - fast) <= bound))
    return checks


def report_lines(rows: list[FidelityRow]) -> list[str]:
    """The fidelity table, the accuracy checks and a verdict, as text lines."""
    head = f"{'corruption':18s} sev  kind   {'psnr':>6s}  {'mean ref':>8s} {'fast':>7s}  {'std ref':>7s} {'fast':>7s}"
    with_acc = any(r.acc_ref is not None for r in rows)
    lines = [head + ("  acc ref  fast" if with_acc else "") + "  ok"]
    for r in rows:
        line = (f"{r.corruption:18s} {r.severity:3d}  {'det' if r.deterministic else 'rand':5s}  {r.psnr:6.1f}  "
                f"{r.mean_ref:8.2f} {r.mean_fast:7.2f}  {r.std_ref:7.2f} {r.std_fast:7.2f}")
        if with_acc:
            line += f"  {100 * r.acc_ref:6.1f} {100 * r.acc_fast:5.1f}"
        lines.append(line + ("  ok" if r.passed else "  FAIL"))
    checks = accuracy_checks(rows)
    if checks:
        lines.append("accuracy (%)        ref   fast  |diff| bound")
        lines += [f"{scope:18s} {ref:5.1f}  {fast:5.1f}  {abs(ref - fast):5.2f}  {bound:.0f}  {'ok' if ok else 'FAIL'}"
                  for scope, ref, fast, bound, ok in checks]
    failed = [f"{r.corruption}/{r.severity}" for r in rows if not r.passed] + [c[0] for c in checks if not c[4]]
    lines.append("fidelity: PASS" if not failed else f"fidelity: FAIL ({', '.join(failed)})")
    return lines


def passed(rows: list[FidelityRow]) -> bool:
    """Every row and every accuracy check passes."""
    return all(r.passed for r in rows) and all(c[4] for c in accuracy_checks(rows))

"""Per-sample records: the one shape every suite produces (DESIGN §3)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .metrics.calibration import Predictions

CLASSIFICATION_COLUMNS = ("sample_id", "label", "pred", "confidence", "correct", "nll")
OOD_COLUMNS = ("sample_id", "is_ood", "score")


@dataclass
class Records:
    """A task's per-sample table; classification records also keep the logits (for temperature scaling)."""

    table: pd.DataFrame
    logits: np.ndarray | None = None
    info: dict = field(default_factory=dict)


def classification_records(logits: np.ndarray, labels: np.ndarray, ids: np.ndarray, **extra: np.ndarray) -> Records:
    """Records with sample_id, label, pred, confidence, correct, nll (raw softmax) plus `extra` columns."""
    p = Predictions.from_logits(logits, labels)
    table = pd.DataFrame({"sample_id": ids, "label": labels.astype(np.int64), "pred": p.pred,
                          "confidence": p.confidence, "correct": p.correct.astype(bool), "nll": p.nll, **extra})
    return Records(table, np.asarray(logits, np.float32))


def ood_records(ids: np.ndarray, is_ood: np.ndarray, score: np.ndarray, **extra: np.ndarray) -> Records:
    """Records with sample_id, is_ood, score (higher = more OOD) plus `extra` columns."""
    return Records(pd.DataFrame({"sample_id": ids, "is_ood": is_ood.astype(bool), "score": score, **extra}))

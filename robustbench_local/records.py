"""Per-sample records: the one shape every suite produces (DESIGN §3)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .metrics.calibration import Predictions
from .record_schema import CLASSIFICATION_SCHEMA, OOD_SCHEMA

CLASSIFICATION_COLUMNS = tuple(CLASSIFICATION_SCHEMA)
OOD_COLUMNS = tuple(OOD_SCHEMA)


class RecordSchemaError(TypeError):
    """Records that do not match their suite's declared `record_schema`: a fault in the suite's code, not the input."""


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


def check_schema(records: Records, schema: Mapping[str, str], what: str) -> None:
    """Refuse records whose columns are not exactly `schema`'s, or hold another dtype kind than it declares."""
    table = records.table
    missing, extra = [c for c in schema if c not in table], [c for c in table if c not in schema]
    wrong = [f"{c} ({table[c].dtype}, declared {schema[c]!r})" for c in schema
             if c in table and table[c].dtype.kind not in schema[c]]
    if missing or extra or wrong:
        problems = [f"{label}: {', '.join(map(str, cols))}" for label, cols in
                    (("missing", missing), ("undeclared", extra), ("wrong kind", wrong)) if cols]
        raise RecordSchemaError(f"{what}: records do not match the suite's record_schema ({'; '.join(problems)}); "
                                "fix the suite's run() or its record_schema")

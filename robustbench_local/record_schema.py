"""Record schemas as plain data: column -> the numpy dtype kinds it may hold (light to import)."""
from __future__ import annotations

# dtype kinds: i int, u unsigned, f float, b bool, U/O text
ID, INT, FLOAT, BOOL, TEXT = "iuUO", "iu", "f", "b", "UO"
CLASSIFICATION_SCHEMA = {"sample_id": ID, "label": INT, "pred": INT, "confidence": FLOAT, "correct": BOOL,
                         "nll": FLOAT}
OOD_SCHEMA = {"sample_id": ID, "is_ood": BOOL, "score": FLOAT}

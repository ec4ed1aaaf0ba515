"""Extract once, score many: per-model memo of representations and gradient scores (in memory, per process),
and fitted detector state cached once per model and ID fitting set in the run dir (.npz with its digest, never
pickle)."""
from __future__ import annotations

import io
import json
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from robustbench_local.data import DataSource
from robustbench_local.models import Classifier
from robustbench_local.progress import Progress
from robustbench_local.runner.store import RunStore
from robustbench_local.seeding import derive_seed

from .detectors.base import Detector
from .representations import Representations, extract

FIT_DIR = "ood_fit"
_MEMO: weakref.WeakKeyDictionary[Classifier, dict[tuple, Any]] = weakref.WeakKeyDictionary()


def memo(model: Classifier, key: tuple, compute: Callable[[], Any]) -> Any:
    """`compute()` once per (model object, key) in this process."""
    store = _MEMO.setdefault(model, {})
    if key not in store:
        store[key] = compute()
    return store[key]


def model_fingerprint(model: Classifier) -> str:
    return memo(model, ("fingerprint",), lambda: model.fingerprint)


def representations(model: Classifier, data: DataSource, batch_size: int) -> Representations:
    """Logits and features of `data` (one streamed forward pass, computed once per model and data)."""
    return memo(model, ("reps", data.fingerprint),
                lambda: extract(model, data.batches(batch_size), data.labels))


def fitted(detector: Detector, model: Classifier, fit_data: DataSource, batch_size: int, run_dir: Path,
           role: str, progress: Progress = Progress()) -> Detector:
    """`detector` fitted on `fit_data` (its ID `role`: 'train' or 'val'), reading/writing the run dir's cache
    (a cached state that does not match its recorded digest is refitted, with a notice on `progress`)."""
    digest = derive_seed(model_fingerprint(model), fit_data.fingerprint, repr(detector)) % 16**10
    store = RunStore(run_dir, progress)
    path = store.root / FIT_DIR / f"{detector.name}-{digest:010x}.npz"
    if store.intact(path):
        with np.load(path, allow_pickle=False) as z:
            return detector.load_state({k: z[k] for k in z.files if k != "meta"})
    reps = representations(model, fit_data, batch_size)
    detector.fit(reps if role == "train" else None, reps if role == "val" else None)
    meta = {"detector": repr(detector), "model_fingerprint": model_fingerprint(model), "fit_data": fit_data.name,
            "fit_data_fingerprint": fit_data.fingerprint, "n": len(fit_data), "role": role}
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(json.dumps(meta)), **detector.fitted_state())
    store.write(path, buffer.getvalue())
    return detector

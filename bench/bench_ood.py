"""All OOD detectors on one ID/OOD pair: extract once and score many (this harness) against every detector
doing its own forward passes over ID test, OOD and its fitting split (as per-detector tools such as OpenOOD's
postprocessors do). Same model, data and detectors; the scores must agree exactly."""
from __future__ import annotations

import time

import numpy as np
from robustbench_local.ood.detectors import build
from robustbench_local.ood.detectors.base import FIT_TRAIN, FIT_VAL
from robustbench_local.ood.detectors.odin import ODIN
from robustbench_local.ood.representations import extract

from robustbench_local import load_data, load_model
from robustbench_local.metrics import fit_temperature
from robustbench_local.registry import DETECTORS

BATCH = 256


def _fit_role(name: str) -> str | None:
    fit_on = DETECTORS.get(name).meta["fit_on"]
    return {FIT_TRAIN: "train", FIT_VAL: "val"}.get(fit_on)


def score_all(model, sets: dict, temperature: float, shared: bool) -> dict[str, np.ndarray]:
    """Scores of every detector on ID test + OOD; `shared` extracts each data set once for all detectors."""
    cache: dict[str, object] = {}

    def reps(key: str):
        if not shared or key not in cache:
            cache[key] = extract(model, sets[key].batches(BATCH), sets[key].labels)
        return cache[key]

    out = {}
    for name in DETECTORS:
        det = build(name, temperature)
        if isinstance(det, ODIN):
            out[name] = np.r_[det.score_inputs(model, sets["id"].batches(BATCH)),
                              det.score_inputs(model, sets["ood"].batches(BATCH))]
            continue
        role = _fit_role(name)
        if role:
            det.fit(reps(role) if role == "train" else None, reps(role) if role == "val" else None)
        out[name] = np.r_[det.score(reps("id")), det.score(reps("ood"))]
    return out


def main() -> None:
    model = load_model("builtin:digits-cnn")
    sets = {"id": load_data("builtin:digits", "test"), "ood": load_data("builtin:ood-textures"),
            "train": load_data("builtin:digits", "train"), "val": load_data("builtin:digits", "val")}
    temperature = fit_temperature(model.predict(sets["val"].images), sets["val"].labels)
    print(f"model builtin:digits-cnn, ID builtin:digits test ({len(sets['id'])}), OOD builtin:ood-textures "
          f"({len(sets['ood'])}), fit: train {len(sets['train'])} / val {len(sets['val'])}; "
          f"{len(DETECTORS)} detectors: {', '.join(DETECTORS)}")
    timings, results = {}, {}
    for label, shared in (("extract once, score many", True), ("own forward passes per detector", False)):
        start = time.perf_counter()
        results[label] = score_all(model, sets, temperature, shared)
        timings[label] = time.perf_counter() - start
        print(f"  {label:<34} {timings[label]:7.2f} s")
    a, b = results.values()
    same = all(np.array_equal(a[n], b[n]) for n in DETECTORS)
    shared, own = timings.values()
    print(f"  ratio (own passes / shared): {own / shared:.2f}x faster with shared extraction; "
          f"identical scores: {same}")

"""Attacks suite vs a plain torchattacks loop (same attack, model, points), and `autoattack` vs the original
AutoAttack (pyautoattack): robust accuracy and time ratios, measured side by side in one run on the built-in model.
"""
from __future__ import annotations

import tempfile
import time

import numpy as np
import torch
import torchattacks

from attacks.engine import PointState, run_sequence
from attacks.registry import PGD_STEP_FACTOR, parse_sequence
from attacks.threat import parse_eps
from robustbench_local import evaluate, load_data, load_model
from robustbench_local.models.classifier import to_tensor
from robustbench_local.runner import EvalSpec, run_tasks

SWEEP = ("1/255", "2/255", "4/255", "8/255", "16/255")
SWEEP_POINTS = 360
AA_POINTS = 40
AA_EPS = 0.07
BATCH = 256


def plain_pgd_sweep(model, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """Every eps from scratch on every point: torchattacks.PGD, 10 steps, step 2.5 * eps / 10."""
    accs = []
    for text in SWEEP:
        eps = parse_eps(text)
        atk = torchattacks.PGD(model, eps=eps, alpha=PGD_STEP_FACTOR * eps / 10, steps=10, random_start=True)
        correct = 0
        for lo in range(0, len(y), BATCH):
            adv = atk(x[lo:lo + BATCH], y[lo:lo + BATCH])
            with torch.no_grad():
                correct += int((model(adv).argmax(1) == y[lo:lo + BATCH]).sum())
        accs.append(correct / len(y))
    return accs


def suite_vs_plain(model, data) -> None:
    x, y = to_tensor(data.images).contiguous(), torch.from_numpy(data.labels.astype(np.int64))
    start = time.perf_counter()
    plain = plain_pgd_sweep(model, x, y)
    t_plain = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as out:
        spec = EvalSpec(model.name, data.name, ["attacks"], options={"attack": "pgd", "eps": ",".join(SWEEP)},
                        calibration_data=None)
        start = time.perf_counter()
        store = run_tasks(spec, out, model=model, data=data)
        t_tasks = time.perf_counter() - start
        start = time.perf_counter()
        run = evaluate(model, data, suites=["attacks"], out=out, calibration_data=None, attack="pgd",
                       eps=",".join(SWEEP))
        t_metrics = time.perf_counter() - start
    robust = run.metrics[run.metrics.metric == "robust_acc"].set_index("condition").value
    print(f"PGD-10 Linf sweep {', '.join(SWEEP)} on {len(y)} points of {data.name} ({model.name})")
    print(f"  plain torchattacks loop : {t_plain:7.2f} s  robust acc {[round(a, 4) for a in plain]}")
    print(f"  attacks suite (attacks) : {t_tasks:7.2f} s  robust acc "
          f"{[round(float(robust[f'pgd:Linf:{e}']), 4) for e in SWEEP]}")
    print(f"  suite metrics+bootstrap : {t_metrics:7.2f} s (aggregation of {len(SWEEP)} conditions, not attack work)")
    print(f"  time ratio suite/plain  : {t_tasks / t_plain:.2f} (attack work), "
          f"{(t_tasks + t_metrics) / t_plain:.2f} (with metrics)  [{store.root.name}]")


def autoattack_vs_original(model, data) -> None:
    from pyautoattack import AutoAttack

    state = PointState.from_clean(model.predict(data.images), data.labels)
    start = time.perf_counter()
    run_sequence(model, data.images, data.labels, data.ids, parse_sequence("autoattack"), "Linf", AA_EPS, state,
                 (0, "bench"), BATCH)
    t_ours = time.perf_counter() - start
    ours = float((state.clean_correct & ~state.broken).mean())
    x, y = to_tensor(data.images).contiguous(), torch.from_numpy(data.labels.astype(np.int64))
    start = time.perf_counter()
    _, y_adv = AutoAttack(model, eps=AA_EPS, norm="Linf", seed=0, version="standard").run_standard_evaluation(
        x, y, batch_size=BATCH)
    t_orig = time.perf_counter() - start
    original = float((y_adv == y).float().mean())
    print(f"AutoAttack standard, Linf eps={AA_EPS}, {len(y)} points of {data.name} ({model.name})")
    print(f"  autoattack (torchattacks composite): robust acc {ours:.4f}  {t_ours:7.2f} s  "
          f"per attack {({k: round(v, 2) for k, v in state.seconds.items()})}")
    print(f"  original AutoAttack (pyautoattack)  : robust acc {original:.4f}  {t_orig:7.2f} s")
    print(f"  difference {100 * (ours - original):+.2f} points; time ratio ours/original {t_ours / t_orig:.2f}")


def main() -> None:
    torch.set_num_threads(1)  # both sides alike; many small ops oversubscribe a shared CPU box otherwise
    model = load_model("builtin:digits-cnn")
    test = load_data("builtin:digits", "test")
    print(f"torch threads: {torch.get_num_threads()}, device: {model.device}")
    suite_vs_plain(model, test.limit(SWEEP_POINTS))
    autoattack_vs_original(model, test.limit(AA_POINTS))


if __name__ == "__main__":
    main()

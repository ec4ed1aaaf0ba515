"""Attacks against their references, measured side by side in one run on the whole digits test split:

1. the PGD sweep of the attacks suite vs a plain torchattacks loop (same attack, model, points);
2. validation of the fast protocol `aa-fast` against the original AutoAttack (pyautoattack, standard version) on
   four models of different robustness that `rbl train` produces (standard, PGD-AT, TRADES, Fast-AT), L∞ at two radii
   and L2 at one: robust accuracy of both on the same points, their difference, and the time ratio;
3. the faithful `autoattack` vs the original on the same runs: robust accuracy after each stage, time ratio.

Model passes (forward and backward rows through the network, counted by hooks) are printed beside the seconds: they
do not depend on the load of a shared machine. The TRADES and Fast-AT models are trained once with README's recipe
into the bench cache (RBL_BENCH_CACHE, default runs/bench-cache) and reused. `python -m bench.bench_attacks pgd`
(or `validation`) runs one section alone.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchattacks
from robustbench_local.attacks.builders import PGD_STEP_FACTOR
from robustbench_local.attacks.engine import PointState, run_sequence
from robustbench_local.attacks.registry import parse_sequence
from robustbench_local.attacks.threat import parse_eps

from robustbench_local import evaluate, load_data, load_model
from robustbench_local.models import Classifier
from robustbench_local.models.classifier import to_tensor
from robustbench_local.runner import EvalSpec, run_tasks

SWEEP = ("2/255", "8/255", "16/255", "24/255", "32/255")
SWEEP_POINTS = 240
REPEATS = 2  # alternate plain and suite, keep each side's fastest run (the box may be shared)
THREATS = (("Linf", 0.15), ("Linf", 0.2), ("L2", 4.0))  # robust accuracy of PGD-AT about 45%, 6%, 15%
FAITHFUL = {("standard", "Linf", 0.2), ("standard", "L2", 4.0), ("pgd-at", "Linf", 0.2), ("pgd-at", "L2", 4.0)}
SEED = 0
BATCH = 256
CACHE = Path(os.environ.get("RBL_BENCH_CACHE", "runs/bench-cache"))
TRAINED = ("trades", "fast-at")  # README's recipe: --eps 0.1 --epochs 15 --seed 0, defaults otherwise
STAGES = ("apgd-ce", "apgd-t", "fab-t", "square")


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


def timed_suite(model, data) -> tuple[float, dict]:
    """Seconds of the suite's attack work (run_tasks) and its robust accuracies per eps."""
    with tempfile.TemporaryDirectory() as out:
        spec = EvalSpec(model.name, data.name, ["attacks"], options={"attack": "pgd", "eps": ",".join(SWEEP)},
                        calibration_data=None)
        start = time.perf_counter()
        run_tasks(spec, out, model=model, data=data)
        elapsed = time.perf_counter() - start
        run = evaluate(model, data, suites=["attacks"], out=out, calibration_data=None, attack="pgd",
                       eps=",".join(SWEEP))
        robust = run.metrics[run.metrics.metric == "robust_acc"].set_index("condition").value
        return elapsed, {e: float(robust[f"pgd:Linf:{e}"]) for e in SWEEP}


def suite_vs_plain(model, data) -> None:
    """The suite against the plain loop fed as a DataLoader feeds it (contiguous NCHW batches), and against the same
    loop fed the channels-last batches the suite decodes to, which separates the layout's share of the saving."""
    nchw, y = to_tensor(data.images).contiguous(), torch.from_numpy(data.labels.astype(np.int64))
    last = to_tensor(data.images)
    times: dict[str, list[float]] = {"plain": [], "plain_cl": [], "suite": []}
    plain = {}
    for _ in range(REPEATS):
        for name, x in (("plain", nchw), ("plain_cl", last)):
            start = time.perf_counter()
            plain[name] = plain_pgd_sweep(model, x, y)
            times[name].append(time.perf_counter() - start)
        elapsed, robust = timed_suite(model, data)
        times["suite"].append(elapsed)
    best = {name: min(t) for name, t in times.items()}
    print(f"PGD-10 Linf sweep {', '.join(SWEEP)} on {len(y)} points of {data.name} ({model.name}), "
          f"best of {REPEATS} alternating runs")
    print(f"  plain torchattacks loop : {best['plain']:7.2f} s  robust acc {[round(a, 4) for a in plain['plain']]}")
    print(f"  same, channels-last     : {best['plain_cl']:7.2f} s  robust acc {[round(a, 4) for a in plain['plain_cl']]}")
    print(f"  attacks suite (attacks) : {best['suite']:7.2f} s  robust acc {[round(robust[e], 4) for e in SWEEP]}")
    print(f"  time ratio suite/plain  : {best['suite'] / best['plain']:.2f} (target <= 0.50; "
          f"{best['suite'] / best['plain_cl']:.2f} against the channels-last loop: the suite skips misclassified "
          "points and points broken at a smaller eps, and stops a point once fooled)")


def bench_models() -> list[tuple[str, Classifier]]:
    """The four models of the validation: the two built-in ones and TRADES / Fast-AT trained into the cache."""
    models = [("standard", load_model("builtin:digits-cnn")), ("pgd-at", load_model("builtin:digits-cnn-at"))]
    for method in TRAINED:
        out = CACHE / f"digits-cnn-{method}"
        if not (out / "log.csv").exists() or len(_log_rows(out)) < 15:  # missing or interrupted: (re)train, resumes
            print(f"  training {method} into {out} (README's recipe; minutes on a CPU)", flush=True)
            subprocess.run([sys.executable, "-c", "from robustbench_local.cli import main; main()", "train",
                            "builtin:digits-cnn?weights=none",
                            "--data", "builtin:digits", "--method", method, "--eps", "0.1", "--epochs", "15",
                            "--seed", "0", "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
        model = load_model(str(out / "best.safetensors"), arch="builtin:digits-cnn")
        model.name = method
        models.append((method, model))
    return models


def _log_rows(out: Path) -> list[str]:
    return (out / "log.csv").read_text().splitlines()[1:]


@dataclass
class Result:
    """One evaluation: robust accuracy at the end and after each stage, seconds, model passes per point."""

    robust: float
    stages: dict[str, float]
    seconds: float
    passes: float


@contextmanager
def counted(model: Classifier):
    """Count the rows of every forward and backward pass through the network."""
    seen = {"rows": 0}

    def forward(module, inputs, output):
        seen["rows"] += len(inputs[0])

    def backward(module, grad_input, grad_output):
        seen["rows"] += len(grad_output[0])

    hooks = [model.net.register_forward_hook(forward), model.net.register_full_backward_hook(backward)]
    try:
        yield seen
    finally:
        for hook in hooks:
            hook.remove()


def run_ours(model: Classifier, data, spec: str, norm: str, eps: float) -> Result:
    """The attacks engine on the whole split (clean pass included, as in the original)."""
    members = parse_sequence(spec)
    with counted(model) as seen:
        start = time.perf_counter()
        state = PointState.from_clean(model.predict(data.images, BATCH), data.labels)
        run_sequence(model, data.read, data.labels, data.ids, members, norm, eps, state, (SEED, "bench", spec), BATCH)
        elapsed = time.perf_counter() - start
    robust = state.clean_correct.copy()
    stages = {}
    for member in members:
        robust &= state.broken_by != member.name
        stages[member.name] = float(robust.mean())
    return Result(float(robust.mean()), stages, elapsed, seen["rows"] / len(data))


def run_original(model: Classifier, data, norm: str, eps: float) -> Result:
    """pyautoattack's standard AutoAttack on the whole split."""
    from pyautoattack import AutoAttack

    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger("auto-attack")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    x, y = to_tensor(data.images, model.device).contiguous(), torch.from_numpy(data.labels.astype(np.int64))
    try:
        with counted(model) as seen:
            start = time.perf_counter()
            _, y_adv = AutoAttack(model, eps=eps, norm=norm, seed=SEED, version="standard",
                                  device=model.device).run_standard_evaluation(x, y.to(model.device), batch_size=BATCH)
            elapsed = time.perf_counter() - start
    finally:
        logger.removeHandler(handler)
    stages = {}
    for m in messages:  # "robust accuracy after APGD-CE: 12.50% (total time 3.1 s)"
        if m.startswith("robust accuracy after "):
            name, value = m.removeprefix("robust accuracy after ").split(": ")
            stages[name.lower()] = float(value.split("%")[0]) / 100
    robust = float((y_adv.cpu() == y).float().mean())
    return Result(robust, {s: stages.get(s, robust) for s in STAGES}, elapsed, seen["rows"] / len(data))


def _threat(norm: str, eps: float) -> str:
    return f"{norm} {eps:g}"


def validation(models: list[tuple[str, Classifier]], data) -> None:
    """aa-fast and the faithful autoattack vs the original AutoAttack, every model x threat model."""
    rows, faithful = [], []
    for label, model in models:
        clean = float((model.predict(data.images, BATCH).argmax(1) == data.labels).mean())
        for norm, eps in THREATS:
            original = run_original(model, data, norm, eps)
            fast = run_ours(model, data, "aa-fast", norm, eps)
            rows.append((label, _threat(norm, eps), clean, original, fast))
            line = (f"  {label:9s} {_threat(norm, eps):9s} done: AA {original.robust:.4f} ({original.seconds:.0f} s), "
                    f"aa-fast {fast.robust:.4f} ({fast.seconds:.0f} s)")
            if (label, norm, eps) in FAITHFUL:
                ours = run_ours(model, data, "autoattack", norm, eps)
                faithful.append((label, _threat(norm, eps), original, ours))
                line += f", autoattack {ours.robust:.4f} ({ours.seconds:.0f} s)"
            print(line, flush=True)
    n = len(data)
    print(f"\naa-fast vs original AutoAttack (pyautoattack, standard), {n} points of {data.name} "
          f"(one point = {100 / n:.2f} pts); passes = forward + backward rows per point")
    print(f"  {'model':9s} {'threat':9s} {'clean':>6s} {'AA':>7s} {'aa-fast':>7s} {'diff':>6s} {'AA s':>7s} "
          f"{'fast s':>7s} {'time':>5s} {'AA passes':>9s} {'fast passes':>11s} {'passes':>6s}")
    for label, threat, clean, original, fast in rows:
        print(f"  {label:9s} {threat:9s} {clean:6.4f} {original.robust:7.4f} {fast.robust:7.4f} "
              f"{100 * (fast.robust - original.robust):+6.2f} {original.seconds:7.1f} {fast.seconds:7.1f} "
              f"{fast.seconds / original.seconds:5.2f} {original.passes:9.0f} {fast.passes:11.0f} "
              f"{fast.passes / original.passes:6.2f}")
    worst = max(100 * (f.robust - o.robust) for _, _, _, o, f in rows)
    total = sum(f.seconds for *_, f in rows) / sum(o.seconds for *_, o, _ in rows)
    print(f"  largest difference {worst:+.2f} points (target <= +0.50); total time ratio {total:.2f} "
          "(target <= 0.25)")
    print(f"\nfaithful autoattack vs original, robust accuracy after {' -> '.join(STAGES)}")
    for label, threat, original, ours in faithful:
        print(f"  {label:9s} {threat:9s} original {_stages(original)}  {original.seconds:7.1f} s {original.passes:6.0f} "
              f"passes\n  {'':9s} {'':9s} ours     {_stages(ours)}  {ours.seconds:7.1f} s {ours.passes:6.0f} passes  "
              f"time ratio {ours.seconds / original.seconds:.2f}, passes ratio {ours.passes / original.passes:.2f}")
    total = sum(o.seconds for *_, o in faithful) / sum(r.seconds for _, _, r, _ in faithful)
    print(f"  total time ratio ours/original {total:.2f} (target <= 1.00)")


def _stages(result: Result) -> str:
    return " -> ".join(f"{result.stages[s]:.4f}" for s in STAGES)


SECTIONS = ("pgd", "validation")


def main(sections: tuple[str, ...] = SECTIONS) -> None:
    """Run the named sections: `pgd` (1.) and `validation` (2. and 3.)."""
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise SystemExit(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    torch.set_num_threads(1)  # both sides alike; many small ops oversubscribe a shared CPU box otherwise
    test = load_data("builtin:digits", "test")
    standard = load_model("builtin:digits-cnn")
    print(f"torch threads: {torch.get_num_threads()}, device: {standard.device}")
    if "pgd" in sections:
        suite_vs_plain(standard, test.limit(SWEEP_POINTS))
    if "validation" in sections:
        validation(bench_models(), test)


if __name__ == "__main__":
    main(tuple(sys.argv[1:]) or SECTIONS)

"""Attacks suite vs a plain torchattacks loop (same attack, model, points), and `autoattack` vs the original
AutoAttack (pyautoattack): robust accuracy and time ratios, measured side by side in one run on the built-in model.
"""
from __future__ import annotations

import tempfile
import time

import numpy as np
import torch
import torchattacks
from robustbench_local.attacks.engine import PointState, run_sequence
from robustbench_local.attacks.registry import PGD_STEP_FACTOR, parse_sequence
from robustbench_local.attacks.threat import parse_eps

from robustbench_local import evaluate, load_data, load_model
from robustbench_local.models.classifier import to_tensor
from robustbench_local.runner import EvalSpec, run_tasks

SWEEP = ("2/255", "8/255", "16/255", "24/255", "32/255")
SWEEP_POINTS = 240
REPEATS = 2  # alternate plain and suite, keep each side's fastest run (the box may be shared)
AA_POINTS = 40
AA_EPS = 0.07
AA_SEEDS = (0, 1)  # one borderline point flips with the random starts, in both implementations
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
    x, y = to_tensor(data.images).contiguous(), torch.from_numpy(data.labels.astype(np.int64))
    t_plain, t_suite = [], []
    for _ in range(REPEATS):
        start = time.perf_counter()
        plain = plain_pgd_sweep(model, x, y)
        t_plain.append(time.perf_counter() - start)
        elapsed, robust = timed_suite(model, data)
        t_suite.append(elapsed)
    print(f"PGD-10 Linf sweep {', '.join(SWEEP)} on {len(y)} points of {data.name} ({model.name}), "
          f"best of {REPEATS} alternating runs")
    print(f"  plain torchattacks loop : {min(t_plain):7.2f} s  robust acc {[round(a, 4) for a in plain]}")
    print(f"  attacks suite (attacks) : {min(t_suite):7.2f} s  robust acc {[round(robust[e], 4) for e in SWEEP]}")
    print(f"  time ratio suite/plain  : {min(t_suite) / min(t_plain):.2f} (the suite skips misclassified points "
          "and points broken at a smaller eps)")


def _stages(broken_by: np.ndarray, clean_correct: np.ndarray, names: list[str]) -> str:
    robust = clean_correct.copy()
    out = []
    for name in names:
        robust &= broken_by != name
        out.append(f"{name} {robust.mean():.4f}")
    return " -> ".join(out)


def autoattack_vs_original(model, data) -> None:
    print(f"AutoAttack standard, Linf eps={AA_EPS}, {len(data)} points of {data.name} ({model.name})")
    members = parse_sequence("autoattack")
    names = [m.name for m in members]
    results = []
    for seed in AA_SEEDS:
        state = PointState.from_clean(model.predict(data.images), data.labels)
        start = time.perf_counter()
        run_sequence(model, data.read, data.labels, data.ids, members, "Linf", AA_EPS, state, (seed, "bench"), BATCH)
        elapsed = time.perf_counter() - start
        results.append((float((state.clean_correct & ~state.broken).mean()), elapsed))
        print(f"  autoattack (torchattacks composite), seed {seed}: robust acc {results[-1][0]:.4f} "
              f"{elapsed:7.2f} s; after {_stages(state.broken_by, state.clean_correct, names)}")
    originals = []
    for seed in AA_SEEDS:
        robust, elapsed, after = run_original(model, data, seed)
        originals.append((robust, elapsed))
        print(f"  original AutoAttack (pyautoattack), seed {seed}: robust acc {robust:.4f} {elapsed:7.2f} s; "
              f"after {after}")
    ours, theirs = np.array([r for r, _ in results]), np.array([r for r, _ in originals])
    ratio = np.mean([t for _, t in results]) / np.mean([t for _, t in originals])
    print(f"  mean robust acc over {len(AA_SEEDS)} seeds: ours {ours.mean():.4f}, original {theirs.mean():.4f} "
          f"(difference {100 * (ours.mean() - theirs.mean()):+.2f} points; one point of {len(data)} = "
          f"{100 / len(data):.2f}); time ratio ours/original {ratio:.2f}")


def run_original(model, data, seed: int) -> tuple[float, float, str]:
    """pyautoattack's standard AutoAttack: (robust accuracy, seconds, robust accuracy after each attack)."""
    import logging

    from pyautoattack import AutoAttack

    stages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: stages.append(record.getMessage())
    logger = logging.getLogger("auto-attack")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    x, y = to_tensor(data.images).contiguous(), torch.from_numpy(data.labels.astype(np.int64))
    start = time.perf_counter()
    try:
        _, y_adv = AutoAttack(model, eps=AA_EPS, norm="Linf", seed=seed, version="standard").run_standard_evaluation(
            x, y, batch_size=BATCH)
    finally:
        logger.removeHandler(handler)
    elapsed = time.perf_counter() - start
    after = [m.split(" (")[0].removeprefix("robust accuracy after ") for m in stages if "accuracy after" in m]
    return float((y_adv == y).float().mean()), elapsed, " -> ".join(after)


def main() -> None:
    torch.set_num_threads(1)  # both sides alike; many small ops oversubscribe a shared CPU box otherwise
    model = load_model("builtin:digits-cnn")
    test = load_data("builtin:digits", "test")
    print(f"torch threads: {torch.get_num_threads()}, device: {model.device}")
    suite_vs_plain(model, test.limit(SWEEP_POINTS))
    autoattack_vs_original(model, test.limit(AA_POINTS))


if __name__ == "__main__":
    main()

"""The CI gate on the built-in models: false alarms on seed-only changes, detection of a real regression, and the
time of a pull-request build with the baseline from the cache vs evaluated.

Seed-only changes: the zoo's standard digits-cnn fine-tuned for one epoch (lr 0.01, shift 2) with seeds 1..11 (the
same recipe, only the seed differs). Every pair a < b is one build: baseline a, candidate b, the rules
`rbl gate --init` proposes from a (55 builds). Regression: the zoo's PGD-AT model as the baseline (its --init rules)
and each standard model (the zoo's and the 11) as the candidate (12 builds). Every run: the clean suite and FGSM
at eps 0.1 on the 360 test images. Build times: `rbl ci` (a fresh process, as in CI) on a two-commit repository,
first with an empty cache, then with the baseline cached. Models and runs are kept in the bench cache
(RBL_BENCH_CACHE, default runs/bench-cache), so a second run of this bench only judges and times.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from itertools import combinations
from pathlib import Path

import robustbench_local as rbl
from robustbench_local.gate import judge, load_rules
from robustbench_local.gate_init import propose_rules, rules_document
from robustbench_local.models import load_model
from robustbench_local.progress import Progress
from robustbench_local.training import TrainConfig, train

CACHE = Path(os.environ.get("RBL_BENCH_CACHE", "runs/bench-cache")) / "gate"
ZOO = Path(rbl.__file__).parent / "zoo"
ARCH, DATA = "builtin:digits-cnn", "builtin:digits"
SEEDS = range(1, 12)
SUITE = {"suites": ["clean", "attacks"], "attack": "fgsm", "eps": "0.1"}
CI_ARGS = ["--checkpoint", "model.safetensors", "--arch", ARCH, "--data", DATA, "--suite", "clean,attacks",
           "--attack", "fgsm", "--eps", "0.1"]


def fine_tuned(seed: int) -> Path:
    """The zoo's standard model after one more epoch of training under `seed`."""
    out = CACHE / f"ft-seed{seed}"
    if not (out / "best.safetensors").exists():
        model = load_model(str(ZOO / "digits-cnn.safetensors"), ARCH)
        train(model, rbl.load_data(DATA, "train"), rbl.load_data(DATA, "val"),
              TrainConfig(epochs=1, lr=0.01, seed=seed, augment_shift=2), out, progress=Progress(quiet=True))
    return out / "best.safetensors"


def run(name: str, weights: Path) -> rbl.RunResult:
    return rbl.evaluate(str(weights), DATA, out=CACHE / f"run-{name}", arch=ARCH, **SUITE)


def builds(pairs: list[tuple[rbl.RunResult, rbl.RunResult]]) -> tuple[int, int, int, float]:
    """With the --init rules of each baseline, as `rbl gate` reads them: (failed builds, checks in all, checks whose
    paired bound says the runs really differ, the largest change as a fraction of its allowance)."""
    failed, checks, real, closest = 0, 0, 0, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for i, (baseline, candidate) in enumerate(pairs):
            path = Path(tmp) / f"gate{i}.yaml"
            path.write_text(rules_document(propose_rules(baseline), str(baseline.root)))
            verdicts = judge(baseline, candidate, load_rules(path))
            failed += any(not v.passed for v in verdicts)
            checks += len(verdicts)
            real += sum(v.low > 0 for v in verdicts)
            closest = max(closest, *(v.change / v.rule.threshold for v in verdicts))
    return failed, checks, real, closest


def ci_times() -> tuple[float, float]:
    """Wall seconds of `rbl ci` on a change of the model: the baseline evaluated, then from the cache."""
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        repo.mkdir()
        git = ["git", "-C", str(repo), "-c", "user.email=b@b", "-c", "user.name=bench"]
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        for message, weights in (("base", ZOO / "digits-cnn.safetensors"), ("head", fine_tuned(1))):
            shutil.copyfile(weights, repo / "model.safetensors")
            subprocess.run([*git, "add", "-A"], check=True)
            subprocess.run([*git, "commit", "-qm", message], check=True)
        command = [sys.executable, "-c", "from robustbench_local.cli import main; main()", "--quiet", "ci", "--repo",
                   str(repo), "--base", "HEAD~1", *CI_ARGS, "--cache", f"{tmp}/cache", "--out", f"{tmp}/out"]
        seconds = []
        for _ in range(2):
            start = time.perf_counter()
            subprocess.run(command, check=False, stdout=subprocess.DEVNULL)
            seconds.append(time.perf_counter() - start)
            shutil.rmtree(f"{tmp}/out")  # the candidate is evaluated anew in every build
    return seconds[0], seconds[1]


def main() -> None:
    start = time.perf_counter()
    standard = {s: run(f"ft-seed{s}", fine_tuned(s)) for s in SEEDS}
    zoo_std, zoo_at = run("zoo-std", ZOO / "digits-cnn.safetensors"), run("zoo-at", ZOO / "digits-cnn-at.safetensors")
    print(f"  models and runs ready in {time.perf_counter() - start:.0f} s (cache: {CACHE})", flush=True)

    pairs = [(standard[a], standard[b]) for a, b in combinations(SEEDS, 2)]
    failed, checks, real, closest = builds(pairs)
    print(f"  seed-only changes: {failed} of {len(pairs)} builds fail ({failed / len(pairs):.1%}); of their {checks} "
          f"checks, {real} see a real change (paired bound > 0), the largest change is {closest:.0%} of its allowance")
    regressions = [(zoo_at, candidate) for candidate in (zoo_std, *standard.values())]
    caught, checks, _, _ = builds(regressions)
    print(f"  PGD-AT baseline vs standard candidate: {caught} of {len(regressions)} builds fail ({checks} checks)")
    uncached, cached = ci_times()
    print(f"  rbl ci build: {uncached:.1f} s with an empty cache, {cached:.1f} s with the baseline cached")

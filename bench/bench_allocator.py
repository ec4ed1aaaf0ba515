"""CPU passes with glibc's default malloc against `keep_freed_buffers` (what `rbl` and its workers set at start),
each setting in its own process, alternating: a torchvision ResNet-18 at 224 px (random init) and the built-in
digits CNN, inputs in the channels-last layout `to_tensor` gives, 1 torch thread, fastest of a few passes per
process and of two processes per setting; peak resident memory beside."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from robustbench_local.allocator import glibc

ROUNDS = 2
PASSES = """
import json, resource, sys, time
import torch, torchvision
from robustbench_local import load_model
from robustbench_local.allocator import keep_freed_buffers

if sys.argv[1] == "tuned" and not keep_freed_buffers():
    raise SystemExit("keep_freed_buffers did not apply")
torch.set_num_threads(1)
torch.manual_seed(0)
resnet = torchvision.models.resnet18().eval().requires_grad_(False)
digits = load_model("builtin:digits-cnn").requires_grad_(False)


def images(n, size):
    return torch.rand(n, 3, size, size).contiguous(memory_format=torch.channels_last)


def fastest(model, x, backward, reps):
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        if backward:
            point = x.detach().requires_grad_(True)
            torch.autograd.grad(model(point).sum(), point)
        else:
            with torch.no_grad():
                model(x)
        times.append(time.perf_counter() - start)
    return min(times)


cases = {"resnet18 224 px, forward, batch 64": fastest(resnet, images(64, 224), False, 3),
         "resnet18 224 px, forward+backward, batch 32": fastest(resnet, images(32, 224), True, 3),
         "digits-cnn 32 px, forward+backward, batch 256": fastest(digits, images(256, 32), True, 8)}
print(json.dumps({"cases": cases, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""
SETTINGS = ("default", "tuned")


def run(setting: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    out = subprocess.run([sys.executable, "-c", PASSES, setting], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    libc = glibc()
    if not libc:
        print("not glibc: keep_freed_buffers does not apply here")
        return
    results: dict[str, list[dict]] = {s: [] for s in SETTINGS}
    for _ in range(ROUNDS):
        for setting in SETTINGS:
            results[setting].append(run(setting))
    best = {s: {case: min(r["cases"][case] for r in rs) for case in rs[0]["cases"]} for s, rs in results.items()}
    peak = {s: max(r["peak_mib"] for r in rs) for s, rs in results.items()}
    print(f"{libc} malloc, default vs keep_freed_buffers (rbl's setting), fastest of {ROUNDS} processes each, "
          "1 torch thread")
    print(f"  {'case':48s} {'default s':>9s} {'tuned s':>8s} {'ratio':>6s}")
    for case, default in best["default"].items():
        tuned = best["tuned"][case]
        print(f"  {case:48s} {default:9.3f} {tuned:8.3f} {tuned / default:6.2f}")
    print(f"  peak resident memory: default {peak['default']:.0f} MiB, tuned {peak['tuned']:.0f} MiB")


if __name__ == "__main__":
    main()

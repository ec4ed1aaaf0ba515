"""Shot noise in the fast backend: the table-inversion Poisson sampler (`corruptions.fast.poisson`) vs torch.poisson
per sample (the peer: what the backend used before), one CPU thread, all 5 severities, timed interleaved (best of
REPEATS) at 224 px (ImageNet-C parameters, 4 photos) and 32 px (CIFAR-10-C parameters, 128 built-in digits).
Both produce uint8 images from the same float input; the table build (once per severity, cached) is timed apart."""
from __future__ import annotations

import time

import torch
from robustbench_local.corruptions.fast import poisson
from robustbench_local.corruptions.fast.noise import shot_noise
from robustbench_local.corruptions.fast.ops import generators, truncate_uint8
from robustbench_local.corruptions.fast.params import severity_params

from bench.bench_fast_corruptions import _photos
from robustbench_local.data import load_data

REPEATS = 9


def _torch_poisson(x: torch.Tensor, c: float, gens: list[torch.Generator]) -> torch.Tensor:
    counts = torch.stack([torch.poisson(xi * c, generator=g) for xi, g in zip(x, gens)])
    return truncate_uint8((counts / c).to(x).clamp(0, 1) * 255)


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _report(label: str, images: torch.Tensor, params: str) -> None:
    x, seeds = images.float() / 255, list(range(len(images)))
    severities = [float(severity_params(params, "shot_noise", s)) for s in range(1, 6)]
    poisson.shot_table.cache_clear()
    build = sum(_seconds(lambda c=c: poisson.shot_table(c, "cpu")) for c in severities)
    rows = {"torch.poisson": [], "table sampler": []}
    for c in severities:
        fns = {"torch.poisson": lambda c=c: _torch_poisson(x, c, generators(seeds, x.device)),
               "table sampler": lambda c=c: shot_noise(x, c, generators(seeds, x.device), params)}
        best = {k: min(_seconds(f) for _ in range(2)) for k, f in fns.items()}  # the first call warms up
        for _ in range(REPEATS):
            for k, f in fns.items():
                best[k] = min(best[k], _seconds(f))
        for k in rows:
            rows[k].append(best[k] * 1e3)
    print(f"{label}: {tuple(x.shape)} ({params}), ms per severity 1..5, 1 thread")
    for k, ms in rows.items():
        print(f"  {k:14s}" + "".join(f"{v:8.2f}" for v in ms) + f"   total {sum(ms):7.1f}")
    print(f"  speedup {sum(rows['torch.poisson']) / sum(rows['table sampler']):.1f}x; table build {build * 1e3:.1f} ms "
          "for the 5 severities (once per process)")


def main() -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _report("224x224", torch.from_numpy(_photos(4, 224)).permute(0, 3, 1, 2), "imagenet-c")
        _report("32x32", torch.from_numpy(load_data("builtin:digits", "test", 128).images).permute(0, 3, 1, 2),
                "cifar-10-c")
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    main()

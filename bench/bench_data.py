"""The streaming data layer at real scale, on generated 224-px JPEG folders (bench/jpegs.py):

1. decode: Pillow JPEG decode + resize 256 + centre crop 224 in threads (the data layer) vs worker processes
   (torch's DataLoader over torchvision's ImageFolder), same number of workers, no model;
2. throughput: `rbl evaluate --suite clean` with torchvision:resnet18?num_classes=10 vs a plain
   DataLoader(ImageFolder) + model loop with the same number of decode workers (images/s, ratio);
3. peak RSS of `rbl evaluate` (a fresh process each) at N and 10 N images for the clean, corruptions, attacks and
   OOD suites (a light model, so that 10 N images finish), with the ratio the target bounds (<= 1.2);
4. decodes of an on-the-fly 19 x 5 corruption sweep per image and shard;
5. bytes a pool or Ray worker receives for the data, at N and 10 N images.
N is $RBL_BENCH_N (default 2000). Everything is measured side by side in this one run.
"""
from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import robustbench_local as rbl
from robustbench_local.data import files
from robustbench_local.data.stream import set_workers

from .jpegs import jpeg_folder

N = int(os.environ.get("RBL_BENCH_N", "2000"))
WORKERS = 2
BATCH = 64
LIGHT = "python:bench.jpegs:pooled_linear?norm=imagenet"
SUITES = {
    "clean": ["--suite", "clean"],
    "corruptions": ["--suite", "corruptions", "--corruptions", "contrast,gaussian_noise", "--severities", "3"],
    "attacks": ["--suite", "attacks", "--attack", "fgsm", "--eps", "0,2/255"],
    "ood": ["--suite", "ood", "--ood-data", "builtin:ood-noise-uniform", "--detectors", "msp,energy,maxlogit",
            "--ood-limit", "500"],
}


def spec_of(root: Path) -> str:
    return f"imagefolder:{root}?resize=256&crop=224"


def torchvision_loader(root: Path, workers: int, batch: int = BATCH):
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.PILToTensor()])
    return torch.utils.data.DataLoader(datasets.ImageFolder(str(root), tf), batch_size=batch, num_workers=workers)


def bench_decode(root: Path, n: int) -> Path:
    """Decode-only images/s, threads vs processes, after one warm-up pass each (imports, worker start-up)."""
    data = rbl.load_data(spec_of(root), "test", n)
    subset = root.parent / f"{root.name}-first-{n}"
    if not subset.is_dir():  # ImageFolder has no --limit: the same n files in a folder of their own
        for rel in data.ids.tolist():
            (subset / rel).parent.mkdir(parents=True, exist_ok=True)
            os.link(root / rel, subset / rel)
    set_workers(WORKERS)
    rates: dict[str, list[float]] = {"threads": [], "processes": []}
    for _ in range(3):  # the first pass warms up; the best of the others counts
        start = time.perf_counter()
        count = sum(len(b) for b in data.batches(BATCH))
        rates["threads"].append(count / (time.perf_counter() - start))
        start = time.perf_counter()
        count = sum(len(x) for x, _ in torchvision_loader(subset, WORKERS))
        rates["processes"].append(count / (time.perf_counter() - start))
    threads, processes = max(rates["threads"][1:]), max(rates["processes"][1:])
    print(f"decode 224 px JPEGs (resize 256, crop 224), {WORKERS} workers, {n} images: threads (this harness) "
          f"{threads:.1f} img/s, processes (DataLoader) {processes:.1f} img/s, ratio {threads / processes:.2f}")
    return subset


def bench_throughput(subset: Path, n: int, out: Path) -> None:
    model = rbl.load_model("torchvision:resnet18?num_classes=10")
    loader_times, ours_times = [], []
    for attempt in range(3):  # alternate, keep the best of each (the machine is shared)
        start = time.perf_counter()
        with torch.no_grad():
            for x, _ in torchvision_loader(subset, WORKERS):
                model(x.float().div_(255))
        loader_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        rbl.evaluate(model, spec_of(subset), ["clean"], out=out / f"clean-{attempt}", batch_size=BATCH,
                     calibration_data=None, data_workers=WORKERS)
        ours_times.append(time.perf_counter() - start)
    plain, ours = n / min(loader_times), n / min(ours_times)
    print(f"clean suite, resnet18 at 224 px, {n} images, {WORKERS} decode workers: rbl evaluate {ours:.1f} img/s, "
          f"DataLoader(ImageFolder) + model loop {plain:.1f} img/s, ratio {ours / plain:.2f} (target >= 0.9)")


def peak_rss_mib(args: list[str]) -> float:
    """Peak resident memory of `rbl ARGS` run in a fresh process."""
    code = ("import resource, sys\nfrom robustbench_local.cli import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    done = subprocess.run([sys.executable, "-c", code, "--quiet", *args], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return int(done.stdout.strip().splitlines()[-1]) / 1024


def bench_rss(sizes: list[int], out: Path) -> None:
    print(f"peak RSS of rbl evaluate on 224 px JPEGs ({LIGHT}):")
    for suite, args in SUITES.items():
        rss = {n: peak_rss_mib(["evaluate", LIGHT, "--data", spec_of(jpeg_folder(n)), "--out", str(out / f"{suite}-{n}"),
                                "--calibration-data", "none", "--batch-size", str(BATCH), *args]) for n in sizes}
        small, large = rss[sizes[0]], rss[sizes[-1]]
        print(f"  {suite:12s} {sizes[0]:>6} images {small:8.0f} MiB   {sizes[-1]:>6} images {large:8.0f} MiB   "
              f"ratio {large / small:.2f} (target <= 1.2)")
    print("  (OOD holds only the N x D features and N x K logits of each set: 768 + 10 floats per image here)")


def bench_decodes(root: Path, out: Path) -> None:
    seen: list[str] = []
    real = files.decode

    def counting(path, transform):
        seen.append(str(path))
        return real(path, transform)

    files.decode = counting
    try:
        n = 64
        rbl.evaluate(LIGHT, spec_of(root), ["corruptions"], out=out / "sweep", limit=n, batch_size=16, shard_size=32,
                     calibration_data=None, corruptions="all", severities="1-5")
    finally:
        files.decode = real
    print(f"on-the-fly 19 x 5 corruption sweep (+ clean), {n} images in 2 shards: {len(seen)} decodes "
          f"({len(seen) / n:.2f} per image; per condition it would be 96)")


def bench_bytes(sizes: list[int]) -> None:
    sent = {n: len(pickle.dumps(rbl.load_data(spec_of(jpeg_folder(n))))) for n in sizes}
    memory = {n: len(pickle.dumps(rbl.load_data(spec_of(jpeg_folder(n)), "test", 200).images)) for n in sizes[:1]}
    print(f"bytes a worker receives for the data: {sizes[0]} images {sent[sizes[0]]} B, {sizes[-1]} images "
          f"{sent[sizes[-1]]} B (the spec, not the pixels: 200 decoded images alone pickle to "
          f"{memory[sizes[0]] / 2**20:.1f} MiB)")


def main() -> None:
    sizes = [N, 10 * N]
    out = Path(tempfile.mkdtemp(prefix="rbl-bench-data-"))
    try:
        roots = {n: jpeg_folder(n) for n in sizes}
        subset = bench_decode(roots[N], min(N, 512))
        bench_throughput(subset, min(N, 512), out)
        bench_decodes(roots[N], out)
        bench_bytes(sizes)
        bench_rss(sizes, out)
    finally:
        shutil.rmtree(out, ignore_errors=True)

"""Fast (batched torch) vs reference (imagecorruptions) backend: the full 19 x 5 sweep on the same images, timed
side by side in one run, at 224 px (ImageNet-C parameters, natural photos) and 32 px (CIFAR-10-C parameters,
built-in digits). The reference runs in-process on one core; the fast backend is timed with torch's default
thread count and with one thread. On a GPU the fast sweep also runs there: each clean batch is copied to the
device once and every corruption stays on it (no per-image host round trips; written for CUDA, untested here)."""
from __future__ import annotations

import time

import cv2
import numpy as np
import skimage.data
import torch

from corruptions.engine import corrupted_batches, sample_seeds
from corruptions.fast import corrupt_tensor
from corruptions.names import ALL, SEVERITIES
from robustbench_local.data import load_data

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry")


def _photos(n: int, size: int) -> np.ndarray:
    """`n` of scikit-image's bundled photos, centre-cropped square and resized to size x size (uint8 NHWC)."""
    out = []
    for name in PHOTOS[:n]:
        img = getattr(skimage.data, name)()
        side = min(img.shape[:2])
        top, left = (img.shape[0] - side) // 2, (img.shape[1] - side) // 2
        out.append(cv2.resize(img[top:top + side, left:left + side], (size, size), interpolation=cv2.INTER_AREA))
    return np.stack(out)


def _sweep_reference(images: np.ndarray, params: str) -> float:
    ids = np.arange(len(images))
    start = time.perf_counter()
    for name in ALL:
        for s in SEVERITIES:
            for _ in corrupted_batches(images, name, s, sample_seeds(0, ids, name, s), params, "reference", workers=0):
                pass
    return time.perf_counter() - start


def _sweep_fast(images: np.ndarray, params: str, device: torch.device) -> float:
    ids = np.arange(len(images))
    clean = torch.from_numpy(images).to(device).permute(0, 3, 1, 2)  # one host-to-device copy for the whole sweep
    seeds = {(n, s): [int(v) for v in sample_seeds(0, ids, n, s)] for n in ALL for s in SEVERITIES}
    corrupt_tensor(clean[:1], "glass_blur", 1, seeds["glass_blur", 1][:1], params)  # warm-up (caches, kernels)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for name in ALL:
        for s in SEVERITIES:
            corrupt_tensor(clean, name, s, seeds[name, s], params)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def _report(label: str, images: np.ndarray, params: str) -> None:
    n, conditions = len(images), len(ALL) * len(SEVERITIES)
    ref = _sweep_reference(images, params)
    threads = torch.get_num_threads()
    fast = _sweep_fast(images, params, torch.device("cpu"))
    torch.set_num_threads(1)
    try:
        fast_1 = _sweep_fast(images, params, torch.device("cpu"))
    finally:
        torch.set_num_threads(threads)
    print(f"{label}: {n} images x {conditions} conditions ({params})")
    print(f"  reference (1 core)       {ref:8.2f} s  {ref / n:7.3f} s/image")
    print(f"  fast, CPU {threads} thread(s)     {fast:8.2f} s  {fast / n:7.3f} s/image   {ref / fast:6.1f}x")
    print(f"  fast, CPU 1 thread       {fast_1:8.2f} s  {fast_1 / n:7.3f} s/image   {ref / fast_1:6.1f}x")
    if torch.cuda.is_available():
        gpu = _sweep_fast(images, params, torch.device("cuda"))
        print(f"  fast, {torch.cuda.get_device_name():18s} {gpu:8.2f} s  {gpu / n:7.3f} s/image   {ref / gpu:6.1f}x")


def main() -> None:
    _report("224x224", _photos(4, 224), "imagenet-c")
    _report("32x32", load_data("builtin:digits", "test", 128).images, "cifar-10-c")


if __name__ == "__main__":
    main()

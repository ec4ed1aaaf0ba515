"""Fast (batched torch) vs reference (imagecorruptions) backend: the full 19 x 5 sweep on the same images, timed
side by side in one run, at 224 px (ImageNet-C parameters, natural photos) and 32 px (CIFAR-10-C parameters,
built-in digits). The reference runs in-process on one core; the fast backend is timed with torch's default
thread count and with one thread, in steady state: what it builds once per condition and keeps (kernels, tables,
frost textures) is built by a one-image warm-up first, whose time is printed separately. On a GPU the fast sweep
also runs there: each clean batch is copied to the device once and every corruption stays on it (no per-image
host round trips)."""
from __future__ import annotations

import time

import cv2
import numpy as np
import skimage.data
import torch
from robustbench_local.corruptions.engine import corrupted_batches, sample_seeds
from robustbench_local.corruptions.fast import corrupt_tensor
from robustbench_local.corruptions.names import ALL, SEVERITIES

from robustbench_local.data import load_data

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "retina", "hubble_deep_field")


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


def _sweep_fast(images: np.ndarray, params: str, device: torch.device) -> tuple[float, float]:
    """(one-image warm-up of every condition, the sweep itself) in seconds."""
    ids = np.arange(len(images))
    clean = torch.from_numpy(images).to(device).permute(0, 3, 1, 2)  # one host-to-device copy for the whole sweep
    seeds = {(n, s): [int(v) for v in sample_seeds(0, ids, n, s)] for n in ALL for s in SEVERITIES}
    times = []
    for batch in (clean[:1], clean):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for name in ALL:
            for s in SEVERITIES:
                corrupt_tensor(batch, name, s, seeds[name, s][:len(batch)], params)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return times[0], times[1]


def _report(label: str, images: np.ndarray, params: str) -> None:
    n, conditions = len(images), len(ALL) * len(SEVERITIES)
    ref = _sweep_reference(images, params)
    threads = torch.get_num_threads()
    warm, fast = _sweep_fast(images, params, torch.device("cpu"))
    torch.set_num_threads(1)
    try:
        warm_1, fast_1 = _sweep_fast(images, params, torch.device("cpu"))
    finally:
        torch.set_num_threads(threads)
    print(f"{label}: {n} images x {conditions} conditions ({params})")
    print(f"  reference (1 core)       {ref:8.2f} s  {ref / n:7.3f} s/image")
    print(f"  fast, CPU {threads} thread(s)     {fast:8.2f} s  {fast / n:7.3f} s/image   {ref / fast:6.1f}x"
          f"   (warm-up {warm:.2f} s)")
    print(f"  fast, CPU 1 thread       {fast_1:8.2f} s  {fast_1 / n:7.3f} s/image   {ref / fast_1:6.1f}x"
          f"   (warm-up {warm_1:.2f} s)")
    if torch.cuda.is_available():
        warm_gpu, gpu = _sweep_fast(images, params, torch.device("cuda"))
        print(f"  fast, {torch.cuda.get_device_name():18s} {gpu:8.2f} s  {gpu / n:7.3f} s/image   {ref / gpu:6.1f}x"
              f"   (warm-up {warm_gpu:.2f} s)")


def main() -> None:
    _report("224x224", _photos(len(PHOTOS), 224), "imagenet-c")
    _report("32x32", load_data("builtin:digits", "test", 128).images, "cifar-10-c")


if __name__ == "__main__":
    main()

"""Readers for precomputed corruption sets: `cifar10c:DIR` and `imagenetc:DIR`.

Each sample id is `<corruption>/<severity>/<rest>`, so the corruptions suite can pick the samples of one
(corruption, severity) condition (`precomputed_index`). Query options: `?corruptions=common|all|NAME,...`
and `?severities=1-5` restrict what is read (default: every corruption and severity present);
`imagenetc` also takes `?resize=N&crop=N` like `imagefolder`, and `cifar10c` `?num_classes=K`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from robustbench_local.data.imagefolder import load_imagefolder
from robustbench_local.data.sampleset import SampleSet
from robustbench_local.errors import DataError

from .names import ALL, parse_corruptions, parse_severities

SCHEMES = ("cifar10c", "imagenetc")


def _selection(options: dict[str, str], present: list[str], root: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    wanted = parse_corruptions(options["corruptions"]) if "corruptions" in options else tuple(present)
    missing = [c for c in wanted if c not in present]
    if missing:
        raise DataError(f"{root} has no data for {', '.join(missing)}; present: {', '.join(present) or 'none'}")
    if not wanted:
        raise DataError(f"{root} holds no corruption data; expected files/folders named after corruptions "
                        f"({', '.join(ALL[:3])}, ...)")
    return wanted, parse_severities(options.get("severities", "1-5"))


def _check_split(kind: str, root: str, split: str) -> None:
    if split != "test":
        raise DataError(f"{kind}:{root} has only a test split (no {split!r}); for temperature scaling pass "
                        "--calibration-data with the clean data set (e.g. cifar10:DIR)")


def load_cifar10c(root: str, split: str, options: dict[str, str]) -> SampleSet:
    """`<name>.npy` uint8 (5n, H, W, 3) with severity s in rows (s-1)n .. sn, plus `labels.npy` (5n,)."""
    _check_split("cifar10c", root, split)
    base = Path(root)
    if not (base / "labels.npy").is_file():
        raise DataError(f"{root} has no labels.npy; point cifar10c: at the extracted CIFAR-10-C folder")
    labels_all = np.load(base / "labels.npy")
    present = [c for c in ALL if (base / f"{c}.npy").is_file()]
    corruptions, severities = _selection(options, present, root)
    if len(labels_all) % 5 or labels_all.ndim != 1:
        raise DataError(f"{root}/labels.npy has shape {labels_all.shape}; expected (5n,): n labels per severity")
    n = len(labels_all) // 5
    images, labels, ids = [], [], []
    for c in corruptions:
        arr = np.load(base / f"{c}.npy", mmap_mode="r")
        if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[0] != 5 * n or arr.shape[-1] != 3:
            raise DataError(f"{root}/{c}.npy is {arr.dtype} {arr.shape}; expected uint8 ({5 * n}, H, W, 3)")
        for s in severities:
            rows = slice((s - 1) * n, s * n)
            images.append(np.asarray(arr[rows]))
            labels.append(labels_all[rows].astype(np.int64))
            ids += [f"{c}/{s}/{i:05d}" for i in range(n)]
    y = np.concatenate(labels)
    k = int(options["num_classes"]) if options.get("num_classes", "").isdigit() else int(labels_all.max()) + 1
    return SampleSet(np.concatenate(images), y, np.array(ids), k, f"cifar10c:{root}")


def load_imagenetc(root: str, split: str, options: dict[str, str]) -> SampleSet:
    """`<corruption>/<severity>/<wnid>/*.JPEG`; class k is the k-th wnid in sorted order over the whole set."""
    _check_split("imagenetc", root, split)
    base = Path(root)
    if not base.is_dir():
        raise DataError(f"ImageNet-C folder {root} does not exist; give the folder holding <corruption>/<severity>/")
    present = [c for c in ALL if (base / c).is_dir()]
    corruptions, severities = _selection(options, present, root)
    resize, crop = (int(options[k]) if options.get(k, "").isdigit() else None for k in ("resize", "crop"))
    parts = []
    for c in corruptions:
        for s in severities:
            folder = base / c / str(s)
            if not folder.is_dir() and "severities" not in options:
                continue
            if not folder.is_dir():
                raise DataError(f"{folder} is missing; restrict ?severities= or ?corruptions= to what is present")
            parts.append((c, s, load_imagefolder(str(folder), "test", resize, crop)))
    if not parts:
        raise DataError(f"{root} has no <corruption>/<severity 1-5>/ folders for {', '.join(corruptions)}")
    wnids = sorted({w for _, _, p in parts for w in p.class_names})
    index = {w: k for k, w in enumerate(wnids)}
    labels = np.concatenate([np.array([index[p.class_names[y]] for y in p.labels], np.int64) for _, _, p in parts])
    ids = np.concatenate([np.char.add(f"{c}/{s}/", p.ids.astype(str)) for c, s, p in parts])
    shapes = {p.images.shape[1:] for _, _, p in parts}
    if len(shapes) > 1:
        raise DataError(f"images under {root} differ in size {sorted(shapes)}; pass ?resize=N&crop=N")
    return SampleSet(np.concatenate([p.images for _, _, p in parts]), labels, ids, len(wnids), f"imagenetc:{root}",
                     tuple(wnids))


def precomputed_index(data: SampleSet, corruption: str, severity: int) -> np.ndarray:
    """Positions of the samples of (corruption, severity) in a precomputed set, by their id prefix."""
    prefix = f"{corruption}/{severity}/"
    return np.flatnonzero(np.char.startswith(data.ids.astype(str), prefix))


def is_precomputed(data: SampleSet) -> bool:
    """True for sets loaded by these readers (their name starts with the scheme)."""
    return data.name.split(":", 1)[0] in SCHEMES

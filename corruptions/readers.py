"""Readers for precomputed corruption sets: `cifar10c:DIR` and `imagenetc:DIR`, opened lazily.

A precomputed set is one index of source images (ids, labels) with one variant per corruption and severity,
named `<corruption>/<severity>`: the corruptions suite reads one variant at a time (`DataSource.with_variant`),
so every condition scores the same source images and only that condition's pixels are read. Ids are the
source images' ids in the clean set (`test-00000` as in cifar10:, `<wnid>/<file>` as in imagenet:), so
--limit picks the same images in every condition. Query options: `?corruptions=common|all|NAME,...` and
`?severities=1-5` choose the variants before anything is read (default: every corruption and severity present);
`imagenetc` also takes `?resize=N&crop=N&interpolation=` like `imagenet` (default: as released, 224 px) and
`cifar10c` `?num_classes=K`.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from robustbench_local.data.files import FileReader, Transform
from robustbench_local.data.imagefolder import imagenet_wnids, index_class_folders, positive_int, transform_of
from robustbench_local.data.source import DataSource
from robustbench_local.errors import DataError
from robustbench_local.fingerprint import digest64

from .names import ALL, parse_corruptions, parse_severities


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


def variant_name(corruption: str, severity: int) -> str:
    """The variant of a precomputed set that holds `corruption` at `severity`."""
    return f"{corruption}/{severity}"


class NpyVariantReader:
    """CIFAR-10-C: `<corruption>.npy` uint8 (5n, H, W, 3), severity s in rows (s-1)n .. sn; memory-mapped."""

    in_memory = True

    def __init__(self, root: Path, variants: tuple[str, ...], n: int) -> None:
        self.root, self.variants, self.n = root, variants, n
        self._arrays: dict[str, np.ndarray] = {}

    def __repr__(self) -> str:
        return f"NpyVariantReader({str(self.root)!r}, {len(self.variants)} variants)"

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_arrays": {}}  # memmaps reopen in the receiving process

    def _array(self, corruption: str) -> np.ndarray:
        if corruption not in self._arrays:
            arr = np.load(self.root / f"{corruption}.npy", mmap_mode="r")
            if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[0] != 5 * self.n or arr.shape[-1] != 3:
                raise DataError(f"{self.root}/{corruption}.npy is {arr.dtype} {arr.shape}; expected uint8 "
                                f"({5 * self.n}, H, W, 3)")
            self._arrays[corruption] = arr
        return self._arrays[corruption]

    def read(self, rows: np.ndarray, variant: str | None) -> np.ndarray:
        if variant is None:
            raise DataError(f"{self.root} holds only corrupted images; read one variant (corruption/severity)")
        corruption, severity = variant.split("/")
        return np.asarray(self._array(corruption)[(int(severity) - 1) * self.n + rows])

    def image_shape(self, row: int, variant: str | None) -> tuple[int, int, int]:
        return tuple(self._array((variant or self.variants[0]).split("/")[0]).shape[1:])

    def sample_digests(self, rows: np.ndarray) -> np.ndarray:
        """Per row: its position, the variants and the sizes and modification times of their files."""
        corruptions = sorted({v.split("/")[0] for v in self.variants})
        stats = [f"{st.st_size}:{st.st_mtime_ns}" for st in (os.stat(self.root / f"{c}.npy") for c in corruptions)]
        return np.array([digest64(r, *self.variants, *stats) for r in rows.tolist()], np.uint64)

    def origins(self, rows: np.ndarray) -> np.ndarray:
        return np.array([f"{self.root.resolve()}#{r}" for r in rows.tolist()])


def open_cifar10c(root: str, split: str, options: dict[str, str]) -> DataSource:
    """The source images of a CIFAR-10-C folder (`<name>.npy` + `labels.npy`, n labels per severity)."""
    _check_split("cifar10c", root, split)
    base = Path(root)
    if not (base / "labels.npy").is_file():
        raise DataError(f"{root} has no labels.npy; point cifar10c: at the extracted CIFAR-10-C folder")
    labels_all = np.load(base / "labels.npy")
    if len(labels_all) % 5 or labels_all.ndim != 1 or labels_all.dtype.kind not in "iu":
        raise DataError(f"{root}/labels.npy is {labels_all.dtype} {labels_all.shape}; expected (5n,) integers: "
                        "n labels per severity")
    n = len(labels_all) // 5
    labels = labels_all[:n].astype(np.int64)
    if not (labels_all.reshape(5, n) == labels).all():
        raise DataError(f"{root}/labels.npy does not repeat the same n labels for each severity; the folder is not "
                        "in CIFAR-10-C's layout")
    present = [c for c in ALL if (base / f"{c}.npy").is_file()]
    corruptions, severities = _selection(options, present, root)
    variants = tuple(variant_name(c, s) for c in corruptions for s in severities)
    k = positive_int(options, "num_classes") or int(labels.max()) + 1
    ids = np.array([f"test-{i:05d}" for i in range(n)])
    return DataSource(NpyVariantReader(base, variants, n), np.arange(n), labels, ids, k, f"cifar10c:{root}")


def open_imagenetc(root: str, split: str, options: dict[str, str]) -> DataSource:
    """The source images of an ImageNet-C folder (`<corruption>/<severity>/<wnid>/*.JPEG`), indexed from the first
    chosen variant; class k is the k-th ImageNet wnid in sorted order, as in imagenet:. Every chosen variant must
    hold the same files (checked by the fingerprint, which stats them)."""
    _check_split("imagenetc", root, split)
    base = Path(root)
    if not base.is_dir():
        raise DataError(f"ImageNet-C folder {root} does not exist; give the folder holding <corruption>/<severity>/")
    present = [c for c in ALL if (base / c).is_dir()]
    corruptions, severities = _selection(options, present, root)
    explicit = "severities" in options
    variants = []
    for c in corruptions:
        for s in severities:
            if (base / c / str(s)).is_dir():
                variants.append(variant_name(c, s))
            elif explicit:
                raise DataError(f"{base / c / str(s)} is missing; restrict ?severities= or ?corruptions= to what is "
                                "present")
    if not variants:
        raise DataError(f"{root} has no <corruption>/<severity 1-5>/ folders for {', '.join(corruptions)}")
    first = base / variants[0]
    relpaths, labels, wnids = index_class_folders(first, imagenet_wnids(), "imagenetc")
    reader = FileReader(base, relpaths, transform_of(options, Transform()), tuple(variants))
    return DataSource(reader, np.arange(len(relpaths)), labels, relpaths, len(wnids), f"imagenetc:{root}", wnids)

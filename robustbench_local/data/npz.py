"""`npz:FILE`: arrays `x` (uint8 NHWC or NHW) and `y`; optional `ids`, `num_classes`, and `x_val`/`y_val`."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError
from .source import DataSource, as_rgb_nhwc


def open_npz(path: str, split: str, options: dict[str, str]) -> DataSource:
    """The file's `x`, `y` for split `test` (or `train`); `x_val`, `y_val` for `val`."""
    if not Path(path).is_file():
        raise DataError(f"npz file {path} does not exist; give a path to an .npz with arrays x and y")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            kind = "a single array (.npy)" if f.read(6) == b"\x93NUMPY" else "not an .npz archive"
        raise DataError(f"{path} is {kind} (an .npz is a zip of arrays); save it with numpy.savez(x=..., y=...)")
    try:
        arrays = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read {path} as .npz ({exc}); save it with numpy.savez(x=..., y=...)") from None
    suffix = "_val" if split == "val" else ""
    if f"x{suffix}" not in arrays or f"y{suffix}" not in arrays:
        raise DataError(f"{path} has no arrays x{suffix}/y{suffix} for split {split!r} "
                        f"(it has {', '.join(arrays.files)}); save them with numpy.savez")
    x = as_rgb_nhwc(_array(arrays, f"x{suffix}", path), path)
    y = _array(arrays, f"y{suffix}", path)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise DataError(f"{path}: y must be a 1-D integer array, got {y.dtype} {y.shape}")
    if not len(y):
        raise DataError(f"{path}: split {split!r} has no samples; save at least one image in x{suffix}")
    y = y.astype(np.int64)
    ids = _array(arrays, f"ids{suffix}", path).astype(str) if f"ids{suffix}" in arrays else \
        np.array([f"{split}-{i:06d}" for i in range(len(y))])
    k = int(y.max()) + 1
    if "num_classes" in arrays:
        given = _array(arrays, "num_classes", path)
        if given.size != 1 or given.dtype.kind not in "iu":
            raise DataError(f"{path}: num_classes must be one integer, got {given.dtype} {given.shape}")
        k = int(given.item())
    return DataSource.from_arrays(x, y, ids, k, f"npz:{path}/{split}")


def _array(arrays: np.lib.npyio.NpzFile, key: str, path: str) -> np.ndarray:
    """arrays[key], refusing object arrays (they are pickles, which could run code)."""
    try:
        return arrays[key]
    except ValueError:
        raise DataError(f"{path}: array {key!r} holds Python objects (a pickle, not loaded for safety); "
                        "save it as a numeric or fixed-width string array") from None

"""`npz:FILE`: arrays `x` (uint8 NHWC or NHW) and `y`; optional `ids`, `num_classes`, and `x_val`/`y_val`."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError
from .sampleset import SampleSet, as_rgb_nhwc


def load_npz(path: str, split: str) -> SampleSet:
    """The file's `x`, `y` for split `test` (or `train`); `x_val`, `y_val` for `val`."""
    if not Path(path).is_file():
        raise DataError(f"npz file {path} does not exist; give a path to an .npz with arrays x and y")
    try:
        arrays = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read {path} as .npz ({exc}); save it with numpy.savez(x=..., y=...)") from None
    suffix = "_val" if split == "val" else ""
    if f"x{suffix}" not in arrays or f"y{suffix}" not in arrays:
        raise DataError(f"{path} has no arrays x{suffix}/y{suffix} for split {split!r} "
                        f"(it has {', '.join(arrays.files)}); save them with numpy.savez")
    x = as_rgb_nhwc(arrays[f"x{suffix}"], path)
    y = arrays[f"y{suffix}"]
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise DataError(f"{path}: y must be a 1-D integer array, got {y.dtype} {y.shape}")
    y = y.astype(np.int64)
    ids = arrays[f"ids{suffix}"].astype(str) if f"ids{suffix}" in arrays else \
        np.array([f"{split}-{i:06d}" for i in range(len(y))])
    k = int(arrays["num_classes"]) if "num_classes" in arrays else int(y.max()) + 1 if len(y) else 0
    return SampleSet(x, y, ids, k, f"npz:{path}/{split}")

"""`builtin:digits`: scikit-learn's bundled 8x8 digits, upscaled to 32x32 RGB uint8."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataError, SpecError
from .schemes import builtin_datasets
from .source import DataSource

SPLITS = ("train", "val", "test")
def open_builtin(name: str, split: str, options: dict[str, str]) -> DataSource:
    """`builtin:NAME[?size=N]`."""
    from ..ood.builtin_sets import OOD_SETS, load_ood_set
    from .imagefolder import positive_int

    known = builtin_datasets()
    if name not in known:
        raise SpecError(f"unknown built-in data set {name!r}; known: {', '.join(known)}")
    size = positive_int(options, "size")
    return load_ood_set(name, split, size) if name in OOD_SETS else load_digits(split, size or 32)


def split_of(index: np.ndarray) -> np.ndarray:
    """Fixed split by original index: index % 5 == 0 is test, == 1 is val, the rest train."""
    return np.choose(np.minimum(index % 5, 2), ["test", "val", "train"])


def load_digits(split: str, size: int = 32) -> DataSource:
    """The digits split `split`; ids are `digits-<original index>`."""
    if split not in SPLITS:
        raise DataError(f"builtin:digits has splits {', '.join(SPLITS)}, not {split!r}")
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    index = np.arange(len(bunch.target))
    keep = index[split_of(index) == split]
    small = torch.from_numpy(bunch.images[keep] / 16.0).float()[:, None]
    big = F.interpolate(small, size=(size, size), mode="bilinear", align_corners=False)
    gray = (big.clamp(0, 1) * 255).round().to(torch.uint8)[:, 0].numpy()
    images = np.repeat(gray[..., None], 3, axis=-1)
    ids = np.array([f"digits-{i:04d}" for i in keep])
    return DataSource.from_arrays(images, bunch.target[keep].astype(np.int64), ids, 10, f"builtin:digits/{split}",
                                  tuple(str(d) for d in range(10)))

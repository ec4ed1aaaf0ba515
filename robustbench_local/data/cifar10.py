"""`cifar10:DIR`: the CIFAR-10 python batches, read with an unpickler that only rebuilds numpy arrays."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ..errors import DataError
from .source import DataSource

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
ALLOWED_GLOBALS = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                   ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED_GLOBALS:
            raise DataError(f"CIFAR batch refers to {module}.{name}, which a CIFAR batch never does; "
                            "the file is not a genuine CIFAR-10 python batch")
        return super().find_class(module, name)


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 32, 32, 3) uint8 and labels of one python batch file."""
    if not path.is_file():
        raise DataError(f"missing CIFAR-10 batch {path}; point cifar10:DIR at the extracted "
                        "'cifar-10-batches-py' folder")
    try:
        with path.open("rb") as f:
            batch = _ArraysOnly(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, IndexError) as exc:
        raise DataError(f"cannot read {path} as a CIFAR-10 python batch ({type(exc).__name__}: {exc}); "
                        "re-extract cifar-10-python.tar.gz") from None
    if not isinstance(batch, dict) or not {b"data", b"labels"} <= batch.keys():
        raise DataError(f"{path} is not a CIFAR-10 python batch (expected a dict with b'data' and b'labels'); "
                        "re-extract cifar-10-python.tar.gz")
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{path}: expected rows of 3072 bytes (32x32x3), got {data.shape}")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), np.asarray(batch[b"labels"], dtype=np.int64)


def open_cifar10(root: str, split: str, options: dict[str, str]) -> DataSource:
    """Split `train` (data_batch_1..5 minus val), `val` (every 10th training image) or `test` (test_batch)."""
    base = Path(root)
    if split == "test":
        images, labels = read_batch(base / "test_batch")
        ids = np.array([f"test-{i:05d}" for i in range(len(labels))])
    elif split in ("train", "val"):
        parts = [read_batch(base / name) for name in TRAIN_FILES]
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        index = np.arange(len(labels))
        keep = (index % 10 == 0) if split == "val" else (index % 10 != 0)
        images, labels, ids = images[keep], labels[keep], np.array([f"train-{i:05d}" for i in index[keep]])
    else:
        raise DataError(f"cifar10 has splits train, val, test, not {split!r}")
    return DataSource.from_arrays(images, labels, ids, 10, f"cifar10/{split}", CLASSES)

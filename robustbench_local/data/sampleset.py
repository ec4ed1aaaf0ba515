"""The in-memory data set every suite consumes."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError
from ..fingerprint import hash_arrays


@dataclass(frozen=True)
class SampleSet:
    """uint8 NHWC RGB images, int64 labels in [0, num_classes) and stable string sample ids."""

    images: np.ndarray
    labels: np.ndarray
    ids: np.ndarray
    num_classes: int
    name: str
    class_names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        validate_images(self.images, self.name)
        n = len(self.images)
        if self.labels.shape != (n,) or self.ids.shape != (n,):
            raise DataError(f"{self.name}: {n} images but labels {self.labels.shape} and ids {self.ids.shape};"
                            " give exactly one label and one id per image")
        if n and (self.labels.min() < 0 or self.labels.max() >= self.num_classes):
            raise DataError(f"{self.name}: label {int(self.labels.max())} out of range for {self.num_classes} "
                            f"classes (labels must be 0..{self.num_classes - 1}); fix the labels or the class count")
        if len(set(self.ids.tolist())) != n:
            raise DataError(f"{self.name}: sample ids are not unique; give every sample its own id")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def fingerprint(self) -> str:
        """Digest of images, labels and ids."""
        return hash_arrays(self.images, self.labels, self.ids)

    def subset(self, index: np.ndarray) -> SampleSet:
        """The samples at positions `index`, keeping their ids."""
        return SampleSet(self.images[index], self.labels[index], self.ids[index], self.num_classes,
                         self.name, self.class_names)

    def limit(self, n: int | None) -> SampleSet:
        """A deterministic subset of `n` samples chosen by id (the same ids whatever the load order)."""
        if n is None or n >= len(self):
            return self
        if n <= 0:
            raise DataError(f"--limit must be positive, got {n}")
        from ..seeding import derive_seed

        keys = np.array([derive_seed("limit", i) for i in self.ids.tolist()], dtype=np.uint64)
        chosen = np.sort(np.argsort(keys, kind="stable")[:n])
        return self.subset(chosen)


def validate_images(images: np.ndarray, name: str) -> None:
    """Raise DataError unless `images` is a uint8 (N, H, W, 3) array."""
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        dtype = getattr(images, "dtype", type(images).__name__)
        raise DataError(f"{name}: images must be uint8 (0..255), got {dtype}; convert them to uint8 pixels")
    if images.ndim != 4 or images.shape[-1] != 3:
        raise DataError(f"{name}: images must have shape (N, H, W, 3), got {images.shape}; "
                        "store images as NHWC RGB (grayscale as NHW or NHW1 is converted by the loaders)")


def as_rgb_nhwc(x: np.ndarray, name: str) -> np.ndarray:
    """Accept NHW, NHW1 or NHW3 uint8 arrays and return NHW3."""
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise DataError(f"{name}: images must have shape (N, H, W, 3) or (N, H, W), got {x.shape}; "
                        "store images as NHWC")
    if x.dtype != np.uint8:
        raise DataError(f"{name}: images must be uint8 (0..255), got {x.dtype}; convert them to uint8 pixels")
    return np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x

"""DataSource: the one data abstraction. The index (ids, labels, class names) lives in memory; images are read
on demand, a batch at a time, as uint8 NHWC, by a Reader (an in-memory array, image files, .npy rows).

A source opened from a spec remembers where it came from (`origin`), so a worker process reopens it from the
spec instead of receiving pixels: pickling a source with an origin sends the spec, the split, the limit and
the fingerprint, nothing that grows with the number of images.
"""
from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from ..errors import DataError
from ..fingerprint import hash_arrays
from .stream import prefetched

MATERIALISE_WARN_IMAGES = 10_000  # `.images` of files warns above this count: iterate `batches()` instead


class Reader(Protocol):
    """Where the pixels of a data set live. Rows are the reader's own sample positions."""

    variants: tuple[str, ...]  # renditions of every row (e.g. precomputed corruptions); () for plain images
    in_memory: bool  # True: reads are slicing (no decode threads needed)

    def read(self, rows: np.ndarray, variant: str | None) -> np.ndarray:
        """uint8 (len(rows), H, W, 3) images of `rows` (of `variant`, when the reader has variants)."""

    def image_shape(self, row: int, variant: str | None) -> tuple[int, int, int]:
        """(H, W, 3) of every image (from `row` if not known yet)."""

    def sample_digests(self, rows: np.ndarray) -> np.ndarray:
        """uint64 identity of each row's pixels (every variant), computed without decoding files."""

    def origins(self, rows: np.ndarray) -> np.ndarray:
        """Per-row identity of the source image (resolved file path or content digest), for leakage checks."""


@dataclass(frozen=True)
class Origin:
    """How a source was made: `load_data(spec, split, limit)` opens it again, anywhere the spec's paths exist, and
    `index` (None: all of it; a range or positions) picks the samples of a subset of what that opens."""

    spec: str
    split: str
    limit: int | None = None
    index: range | np.ndarray | None = None

    def take(self, index: np.ndarray | slice, n: int) -> Origin:
        """The origin of the subset `index` of the `n` samples this origin gives (a slice stays a range)."""
        current = range(n) if self.index is None else self.index
        taken = current[index] if isinstance(index, slice) else np.asarray(current)[index]
        return replace(self, index=taken)


@dataclass(frozen=True, eq=False)
class DataSource:
    """Samples of one split: `ids` (unique strings), `labels` (int64 in [0, num_classes)), images via `reader`.

    `positions` are the reader rows of these samples, in order; `variant` binds a view to one rendition.
    """

    reader: Reader
    positions: np.ndarray
    labels: np.ndarray
    ids: np.ndarray
    num_classes: int
    name: str
    class_names: tuple[str, ...] = ()
    origin: Origin | None = None
    variant: str | None = None
    _fingerprint: str | None = field(default=None, repr=False)
    _digests: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        n = len(self.positions)
        if self.labels.shape != (n,) or self.ids.shape != (n,):
            raise DataError(f"{self.name}: {n} images but labels {self.labels.shape} and ids {self.ids.shape}; "
                            "give exactly one label and one id per image")
        check_labels(self.labels, self.num_classes, self.name)
        if len(np.unique(self.ids)) != n:
            raise DataError(f"{self.name}: sample ids are not unique; give every sample its own id")

    @classmethod
    def from_arrays(cls, images: np.ndarray, labels: np.ndarray, ids: np.ndarray, num_classes: int, name: str,
                    class_names: tuple[str, ...] = (), origin: Origin | None = None) -> DataSource:
        """A source over images already in memory (or a numpy memmap): uint8 (N, H, W, 3)."""
        validate_images(images, name)
        return cls(ArrayReader(images), np.arange(len(images)), np.asarray(labels), np.asarray(ids), num_classes,
                   name, tuple(class_names), origin)

    def __len__(self) -> int:
        return len(self.positions)

    def __reduce_ex__(self, protocol):
        if self.origin is None:  # arrays handed over by the caller: they travel as they are
            return super().__reduce_ex__(protocol)
        return _reopen, (self.origin, self.variant, self.fingerprint)

    # ------------------------------------------------------------------ pixels
    def read(self, index: np.ndarray | slice) -> np.ndarray:
        """uint8 NHWC images of the samples at `index` (positions in this source)."""
        rows = self.positions[index]
        return self.reader.read(np.atleast_1d(rows), self.variant)

    def batches(self, batch_size: int, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """Images [start, stop) in order, `batch_size` at a time; files are decoded ahead by worker threads."""
        stop = len(self) if stop is None else stop
        return self.stream([np.arange(a, min(a + batch_size, stop)) for a in range(start, stop, batch_size)])

    def stream(self, blocks: list[np.ndarray]) -> Iterator[np.ndarray]:
        """The images of each block of positions, in order (e.g. shuffled minibatches); files are decoded ahead."""
        if self.reader.in_memory:
            return (self.read(block) for block in blocks)
        return prefetched(lambda rows: self.reader.read(rows, self.variant), [self.positions[b] for b in blocks])

    @property
    def images(self) -> np.ndarray:
        """Every image in memory at once (a convenience for small sets; warns above 10,000 decoded images)."""
        if len(self) > MATERIALISE_WARN_IMAGES and not self.reader.in_memory:
            warnings.warn(f"{self.name}: decoding all {len(self)} images into memory; iterate "
                          "source.batches(batch_size) instead", stacklevel=2)
        return self.read(slice(None))

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, 3) of the images (known to the reader, or read from the first one)."""
        if not len(self):
            raise DataError(f"{self.name} has no samples; point the data spec at a non-empty set")
        return self.reader.image_shape(self.positions[0], self.variant)

    # ------------------------------------------------------------------ identity
    @property
    def fingerprint(self) -> str:
        """Digest of the index (ids, labels, classes) and of every sample's pixels' identity (file stats, not pixels,
        for files); computed once per source object."""
        if self._fingerprint is None:
            object.__setattr__(self, "_fingerprint", self.index_fingerprint + hash_arrays(self.sample_digests()))
        return self._fingerprint

    @property
    def index_fingerprint(self) -> str:
        """Digest of the index alone: ids, labels, class names, and the variant read."""
        return hash_arrays(self.labels, self.ids, np.array(self.class_names, dtype=str),
                           np.array([str(self.num_classes), self.variant or ""]))

    def sample_digests(self) -> np.ndarray:
        """uint64 identity of each sample's pixels (file path, size and time, or the pixels in memory), in order."""
        if self._digests is None:
            object.__setattr__(self, "_digests", self.reader.sample_digests(self.positions))
        return self._digests

    def origins(self) -> np.ndarray:
        """Per-sample identity of the source image (resolved path or content digest)."""
        return self.reader.origins(self.positions)

    # ------------------------------------------------------------------ views
    def subset(self, index: np.ndarray | slice) -> DataSource:
        """The samples at `index` (positions in this source), keeping their ids; nothing is read."""
        origin = None if self.origin is None else self.origin.take(index, len(self))
        return replace(self, positions=self.positions[index], labels=self.labels[index], ids=self.ids[index],
                       origin=origin, _fingerprint=None, _digests=None)

    def limit(self, n: int | None) -> DataSource:
        """A deterministic subset of `n` samples chosen by id (the same ids whatever the load order); nothing is
        read, so only the chosen images are ever opened."""
        if n is None or n >= len(self):
            return self
        if n <= 0:
            raise DataError(f"--limit must be positive, got {n}")
        from ..seeding import derive_seed

        keys = np.array([derive_seed("limit", i) for i in self.ids.tolist()], dtype=np.uint64)
        chosen = np.sort(np.argsort(keys, kind="stable")[:n])
        limited = self.subset(chosen)
        exact = self.origin is not None and self.origin.index is None and self.origin.limit is None
        return replace(limited, origin=replace(self.origin, limit=n, index=None) if exact else limited.origin)

    @property
    def variants(self) -> tuple[str, ...]:
        """Renditions every sample has (e.g. `fog/3` in a precomputed corruption set); () for plain images."""
        return self.reader.variants

    def with_variant(self, variant: str) -> DataSource:
        """The same samples as rendered in `variant`."""
        if variant not in self.variants:
            raise DataError(f"{self.name} holds no {variant!r}; it holds {', '.join(self.variants) or 'no variants'}")
        return replace(self, variant=variant, _fingerprint=None, _digests=None)


def _reopen(origin: Origin, variant: str | None, fingerprint: str) -> DataSource:
    """Open `origin` again (in a worker process) and check it is still the data the sender had."""
    from . import load_data

    source = load_data(origin.spec, origin.split, origin.limit)
    if origin.index is not None:
        source = source.subset(origin.index if isinstance(origin.index, np.ndarray) else
                               slice(origin.index.start, origin.index.stop, origin.index.step))
    source = source if variant is None else source.with_variant(variant)
    if source.fingerprint != fingerprint:
        raise DataError(f"{origin.spec} ({origin.split}) changed while the run was going (fingerprint "
                        f"{source.fingerprint[:12]} != {fingerprint[:12]}); keep the data fixed during a run, at the "
                        "same path on every node")
    return source


class ArrayReader:
    """Images already in memory (or a memmap): uint8 (N, H, W, 3)."""

    variants: tuple[str, ...] = ()
    in_memory = True

    def __init__(self, images: np.ndarray) -> None:
        self.images = images

    def __repr__(self) -> str:
        return f"ArrayReader({self.images.shape})"

    def read(self, rows: np.ndarray, variant: str | None) -> np.ndarray:
        return np.asarray(self.images[rows])

    def image_shape(self, row: int, variant: str | None) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def sample_digests(self, rows: np.ndarray) -> np.ndarray:
        return np.array([int.from_bytes(hashlib.blake2b(self.images[r].tobytes(), digest_size=8).digest(), "little")
                         for r in rows.tolist()], np.uint64)

    def origins(self, rows: np.ndarray) -> np.ndarray:
        return np.array([hashlib.blake2b(self.images[r].tobytes(), digest_size=16).hexdigest() for r in rows.tolist()])


def check_labels(labels: np.ndarray, num_classes: int, name: str) -> None:
    """Raise DataError unless every label is an integer in [0, num_classes)."""
    if labels.dtype.kind not in "iu":
        raise DataError(f"{name}: labels must be integers, got {labels.dtype}; store class indices 0..K-1")
    if not len(labels):
        return
    low, high = int(labels.min()), int(labels.max())
    if low < 0:
        raise DataError(f"{name}: negative label {low} (labels must be 0..{num_classes - 1}); fix the labels")
    if high >= num_classes:
        raise DataError(f"{name}: label {high} out of range for {num_classes} classes (labels must be "
                        f"0..{num_classes - 1}); fix the labels or the class count")


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

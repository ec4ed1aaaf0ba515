"""Built-in OOD sets: RGB uint8 images generated deterministically at any size (32x32 by default, `?size=N`),
nothing downloaded.

Far (generic, for any ID data): crops of scikit-image's bundled photographs and textures, uniform and Gaussian
noise. Near (digit-specific, only meaningful next to builtin:digits): a left half and a right half of two digits
of different classes stitched together (digit statistics, no valid class). Every image derives from a generator
keyed by (set name, sample id), so a subset is the same images.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from robustbench_local.data.source import DataSource

Draw = Callable[[np.random.Generator], np.ndarray]  # one image from a generator
Generator = Callable[[int], Draw]  # size -> draw

SIZE = 32
N_IMAGES = 360
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "camera", "moon")
TEXTURES = ("brick", "grass", "gravel")


@cache
def _skimage(names: tuple[str, ...]) -> list[np.ndarray]:
    import skimage.data

    images = [np.asarray(getattr(skimage.data, n)()) for n in names]
    return [np.repeat(im[..., None], 3, axis=-1) if im.ndim == 2 else im[..., :3] for im in images]


def _crops(names: tuple[str, ...]) -> Generator:
    def make(size: int) -> Draw:
        from PIL import Image

        sources = _skimage(names)

        def one(rng: np.random.Generator) -> np.ndarray:
            src = sources[rng.integers(len(sources))]
            shortest = min(src.shape[:2])
            low = min(max(48, size), shortest)  # crops no smaller than the output where the photo allows
            high = shortest if size > 48 else shortest // 2
            side = int(rng.integers(low, max(low, high) + 1))
            top, left = (int(rng.integers(0, dim - side + 1)) for dim in src.shape[:2])
            crop = Image.fromarray(np.ascontiguousarray(src[top:top + side, left:left + side]))
            return np.asarray(crop.resize((size, size), Image.BILINEAR), dtype=np.uint8)
        return one

    return make


def _uniform(size: int) -> Draw:
    return lambda rng: rng.integers(0, 256, (size, size, 3), dtype=np.uint8)


def _gaussian(size: int) -> Draw:
    return lambda rng: np.clip(np.round(rng.normal(127.5, 64.0, (size, size, 3))), 0, 255).astype(np.uint8)


def _stitched(size: int) -> Draw:
    from robustbench_local.data.builtin import load_digits

    digits = load_digits("test", size)
    images = digits.images

    def one(rng: np.random.Generator) -> np.ndarray:
        a = int(rng.integers(len(digits)))
        others = np.flatnonzero(digits.labels != digits.labels[a])
        b = int(others[rng.integers(len(others))])
        return np.concatenate([images[a][:, :size // 2], images[b][:, size // 2:]], axis=1)

    return one


@dataclass(frozen=True)
class OODSet:
    """A built-in OOD set: `kind` is 'near' or 'far' (OpenOOD's grouping for the summary means); `digits_only`
    sets are made of digits, so they are OOD only next to builtin:digits."""

    kind: str
    description: str
    generator: Generator
    digits_only: bool = False


OOD_SETS: dict[str, OODSet] = {
    "ood-stitched": OODSet("near", "near OOD for digits: left and right halves of two different digits (360)",
                           _stitched, digits_only=True),
    "ood-textures": OODSet("far", "far OOD: crops of scikit-image's brick/grass/gravel textures (360)",
                           _crops(TEXTURES)),
    "ood-photos": OODSet("far", "far OOD: crops of scikit-image's bundled photographs (360)", _crops(PHOTOS)),
    "ood-noise-uniform": OODSet("far", "far OOD: uniform pixel noise (360)", _uniform),
    "ood-noise-gaussian": OODSet("far", "far OOD: Gaussian pixel noise, mean 127.5, sd 64 (360)", _gaussian),
}


@cache
def _generate(name: str, size: int) -> DataSource:
    from robustbench_local.data.source import DataSource
    from robustbench_local.seeding import numpy_rng

    one = OOD_SETS[name].generator(size)
    ids = np.array([f"{name}-{i:04d}" for i in range(N_IMAGES)])
    images = np.stack([one(numpy_rng(name, sample_id)) for sample_id in ids])
    return DataSource.from_arrays(images, np.zeros(N_IMAGES, np.int64), ids, 1, f"builtin:{name}")


def load_ood_set(name: str, split: str = "test", size: int | None = None) -> DataSource:
    """The built-in OOD set `name` at `size` x `size` px (default 32; a test split only; labels are 0)."""
    from robustbench_local.errors import DataError

    if name not in OOD_SETS:
        raise DataError(f"unknown built-in OOD set {name!r}; known: {', '.join(OOD_SETS)}")
    if split != "test":
        raise DataError(f"builtin:{name} is an OOD evaluation set with a test split only, not {split!r}")
    return _generate(name, size or SIZE)

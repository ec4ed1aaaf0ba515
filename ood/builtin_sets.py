"""Built-in OOD sets for the digits default: 32x32 RGB uint8, generated deterministically, nothing downloaded.

Far: crops of scikit-image's bundled photographs and textures, uniform and Gaussian noise. Near: a left half
and a right half of two digits of different classes stitched together (digit statistics, no valid class).
Every image derives from a generator keyed by (set name, sample id), so a subset is the same images.
robustbench_local.data imports this module, so it imports nothing from robustbench_local at module level.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from robustbench_local.data.sampleset import SampleSet

SIZE = 32
N_IMAGES = 360
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "camera", "moon")
TEXTURES = ("brick", "grass", "gravel")


def _skimage(names: tuple[str, ...]) -> list[np.ndarray]:
    import skimage.data

    images = [np.asarray(getattr(skimage.data, n)()) for n in names]
    return [np.repeat(im[..., None], 3, axis=-1) if im.ndim == 2 else im[..., :3] for im in images]


def _crops(names: tuple[str, ...]) -> Callable[[np.random.Generator], np.ndarray]:
    from PIL import Image

    sources = _skimage(names)

    def one(rng: np.random.Generator) -> np.ndarray:
        src = sources[rng.integers(len(sources))]
        side = int(rng.integers(48, min(src.shape[:2]) // 2 + 1))
        top, left = (int(rng.integers(0, dim - side + 1)) for dim in src.shape[:2])
        crop = Image.fromarray(np.ascontiguousarray(src[top:top + side, left:left + side]))
        return np.asarray(crop.resize((SIZE, SIZE), Image.BILINEAR), dtype=np.uint8)

    return one


def _uniform(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)


def _gaussian(rng: np.random.Generator) -> np.ndarray:
    return np.clip(np.round(rng.normal(127.5, 64.0, (SIZE, SIZE, 3))), 0, 255).astype(np.uint8)


def _stitched() -> Callable[[np.random.Generator], np.ndarray]:
    from robustbench_local.data.builtin import load_digits

    digits = load_digits("test", SIZE)

    def one(rng: np.random.Generator) -> np.ndarray:
        a = int(rng.integers(len(digits)))
        others = np.flatnonzero(digits.labels != digits.labels[a])
        b = int(others[rng.integers(len(others))])
        return np.concatenate([digits.images[a][:, :SIZE // 2], digits.images[b][:, SIZE // 2:]], axis=1)

    return one


@dataclass(frozen=True)
class OODSet:
    """A built-in OOD set: `kind` is 'near' or 'far' (OpenOOD's grouping for the summary means)."""

    kind: str
    description: str
    generator: Callable[[], Callable[[np.random.Generator], np.ndarray]]


OOD_SETS: dict[str, OODSet] = {
    "ood-stitched": OODSet("near", "near OOD: left and right halves of two different digits (32x32, 360)",
                           _stitched),
    "ood-textures": OODSet("far", "far OOD: crops of scikit-image's brick/grass/gravel textures (32x32, 360)",
                           lambda: _crops(TEXTURES)),
    "ood-photos": OODSet("far", "far OOD: crops of scikit-image's bundled photographs (32x32, 360)",
                         lambda: _crops(PHOTOS)),
    "ood-noise-uniform": OODSet("far", "far OOD: uniform pixel noise (32x32, 360)", lambda: _uniform),
    "ood-noise-gaussian": OODSet("far", "far OOD: Gaussian pixel noise, mean 127.5, sd 64 (32x32, 360)",
                                 lambda: _gaussian),
}


@cache
def _generate(name: str) -> SampleSet:
    from robustbench_local.data.sampleset import SampleSet
    from robustbench_local.seeding import numpy_rng

    one = OOD_SETS[name].generator()
    ids = np.array([f"{name}-{i:04d}" for i in range(N_IMAGES)])
    images = np.stack([one(numpy_rng(name, sample_id)) for sample_id in ids])
    return SampleSet(images, np.zeros(N_IMAGES, np.int64), ids, 1, f"builtin:{name}")


def load_ood_set(name: str, split: str = "test") -> SampleSet:
    """The built-in OOD set `name` (a test split only; labels are 0 and meaningless)."""
    from robustbench_local.errors import DataError

    if name not in OOD_SETS:
        raise DataError(f"unknown built-in OOD set {name!r}; known: {', '.join(OOD_SETS)}")
    if split != "test":
        raise DataError(f"builtin:{name} is an OOD evaluation set with a test split only, not {split!r}")
    return _generate(name)

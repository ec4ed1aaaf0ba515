"""Compatibility layer that makes imagecorruptions 1.1.2 import and run on today's stack.

imagecorruptions' only release (1.1.2, 2020) breaks on a current stack in four places. Each is fixed
here without copying its code and without touching numpy, scikit-image or setuptools for anyone else:

1. ``from pkg_resources import resource_filename`` at import: setuptools >= 82 (and Python >= 3.12 venvs)
   have no ``pkg_resources``. A stand-in module exposing ``resource_filename`` (next to the module's file)
   is put in ``sys.modules`` only for the duration of the import, and only when the real one is missing.
2. ``skimage.filters.gaussian(..., multichannel=True)`` (gaussian_blur, glass_blur): the keyword was
   removed in scikit-image 0.20. imagecorruptions' module-level name ``gaussian`` is rebound to a wrapper
   that maps ``multichannel=True`` to ``channel_axis=-1``.
3. ``np.float_`` (fog's plasma fractal): removed in numpy 2. imagecorruptions' module-level name ``np`` is
   rebound to an overlay of numpy that adds ``float_ = float64`` and delegates everything else.
4. Randomness: every draw goes to numpy's legacy global state, except impulse_noise, whose
   ``skimage.util.random_noise`` makes a fresh unseeded generator. In the overlay, ``np.random`` is the
   calling thread's active stream (see `stream`) and falls back to the real global state when none is
   active; ``sk.util.random_noise`` receives a generator seeded from that same stream. So a direct
   ``np.random.seed(s); corrupt(...)`` and a `stream(s)` block give identical images, impulse_noise
   included, and concurrent threads never share or disturb a stream.

A performance fix rides along: frost re-read and re-scaled its texture on every call (~10 ms); in
imagecorruptions' namespace ``cv2.imread`` is cached (textures are read once per process) and ``cv2.resize``
of a cached texture is memoised per target size (same pixels, read-only arrays).
The scipy ``ndimage.interpolation`` DeprecationWarning raised at import is silenced.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
import threading
import types
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import skimage
import skimage.filters
import skimage.util

_local = threading.local()


def active_random() -> Any:
    """The calling thread's active RandomState, or numpy's global `np.random` module when none is active."""
    return getattr(_local, "state", None) or np.random


@contextmanager
def stream(seed: int) -> Iterator[np.random.RandomState]:
    """Within the block, imagecorruptions (in this thread) draws from RandomState(seed), not the global state."""
    # One RandomState per thread and nesting depth, re-seeded on entry: seeding costs ~3 us, creating ~150 us.
    states: list[np.random.RandomState] = _local.__dict__.setdefault("states", [])
    depth = _local.__dict__.get("depth", 0)
    if depth == len(states):
        states.append(np.random.RandomState())
    state, previous = states[depth], getattr(_local, "state", None)
    state.seed(seed)
    _local.state, _local.depth = state, depth + 1
    try:
        yield state
    finally:
        _local.state, _local.depth = previous, depth


class _RandomProxy:
    """Stands in for `np.random` inside imagecorruptions: forwards to the thread's active stream."""

    def __getattr__(self, name: str) -> Any:
        return getattr(active_random(), name)


class _Overlay(types.ModuleType):
    """A module that serves `overrides` and forwards every other attribute to `base`."""

    def __init__(self, base: types.ModuleType, **overrides: Any) -> None:
        super().__init__(base.__name__, base.__doc__)
        self.__dict__.update(overrides)
        self._base = base

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)


def gaussian(image: np.ndarray, *args: Any, multichannel: bool | None = None, **kwargs: Any) -> np.ndarray:
    """skimage.filters.gaussian accepting the pre-0.20 `multichannel` keyword."""
    if multichannel:
        kwargs.setdefault("channel_axis", -1)
    return skimage.filters.gaussian(image, *args, **kwargs)


def random_noise(image: np.ndarray, mode: str = "gaussian", rng: Any = None, **kwargs: Any) -> np.ndarray:
    """skimage.util.random_noise whose default generator is seeded from the active stream."""
    if rng is None:
        rng = np.random.default_rng(active_random().randint(0, 2**32, dtype=np.uint64))
    return skimage.util.random_noise(image, mode=mode, rng=rng, **kwargs)


_TEXTURES: dict[int, tuple] = {}  # id of a cached (never freed) texture -> its imread arguments


@functools.cache
def _cached_imread(*args: Any) -> np.ndarray:
    """cv2.imread, once per file and process; the array is read-only."""
    image = cv2.imread(*args)
    image.flags.writeable = False
    _TEXTURES[id(image)] = args
    return image


@functools.lru_cache(maxsize=16)
def _cached_texture_resize(texture: tuple, dsize: tuple[int, int], interpolation: int) -> np.ndarray:
    resized = cv2.resize(_cached_imread(*texture), dsize, interpolation=interpolation)
    resized.flags.writeable = False
    return resized


def _resize(src: np.ndarray, dsize: Any, *args: Any, **kwargs: Any) -> np.ndarray:
    """cv2.resize that reuses the result for a cached texture (frost rescales it identically for each image size)."""
    texture = _TEXTURES.get(id(src))
    if texture is None or args or set(kwargs) - {"interpolation"}:
        return cv2.resize(src, dsize, *args, **kwargs)
    return _cached_texture_resize(texture, tuple(dsize), kwargs.get("interpolation", cv2.INTER_LINEAR))


def _resource_filename(module_name: str, resource: str) -> str:
    """pkg_resources semantics: `resource` relative to the directory of the (already imported) module."""
    module_file = sys.modules[module_name].__file__
    return str(Path(module_file).parent / resource)


@contextmanager
def _pkg_resources_stand_in() -> Iterator[None]:
    """Provide `pkg_resources.resource_filename` during the import when setuptools no longer ships it."""
    if importlib.util.find_spec("pkg_resources") is not None:
        yield
        return
    stub = types.ModuleType("pkg_resources", "stand-in installed by corruptions.compat for imagecorruptions")
    stub.resource_filename = _resource_filename  # type: ignore[attr-defined]
    sys.modules["pkg_resources"] = stub
    try:
        yield
    finally:
        if sys.modules.get("pkg_resources") is stub:
            del sys.modules["pkg_resources"]


def _patch(module: types.ModuleType) -> None:
    module.np = _Overlay(np, float_=np.float64, random=_RandomProxy())
    module.sk = _Overlay(skimage, util=_Overlay(skimage.util, random_noise=random_noise))
    module.gaussian = gaussian
    module.cv2 = _Overlay(cv2, imread=_cached_imread, resize=_resize)
    module._rbl_compat = True


@functools.lru_cache(maxsize=1)
def imagecorruptions() -> types.ModuleType:
    """The imagecorruptions package, imported once with the compatibility layer applied."""
    with _pkg_resources_stand_in(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        package = importlib.import_module("imagecorruptions")
    corruptions_module = importlib.import_module("imagecorruptions.corruptions")
    if not getattr(corruptions_module, "_rbl_compat", False):
        _patch(corruptions_module)
    return package

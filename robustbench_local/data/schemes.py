"""The built-in data spec schemes and data sets, declared as plain data (this module imports nothing heavy).

A scheme's target is an opener `open(target, split, options) -> DataSource` (target: the text after `scheme:`;
options: the `?key=value` pairs); its `meta["options"]` are the query options it reads (others are refused).
"""
from __future__ import annotations

from ..registry import Entry

TRANSFORM_OPTIONS = ("resize", "crop", "interpolation")
DIGITS = "scikit-learn's 8x8 digits upscaled to 32x32 RGB (train 1077 / val 360 / test 360; ?size=N for N x N)"


def scheme(name: str, opener: str, options: tuple[str, ...], description: str) -> Entry:
    """A data scheme entry (`opener` relative to robustbench_local)."""
    return Entry(name, f"robustbench_local.{opener}", description, meta={"options": options})


SCHEMES = (
    scheme("builtin", "data.builtin:open_builtin", ("size",), "built-in sets (`rbl list datasets`)"),
    scheme("cifar10", "data.cifar10:open_cifar10", (), "the CIFAR-10 python batches folder"),
    scheme("imagefolder", "data.imagefolder:open_imagefolder", ("holdout", *TRANSFORM_OPTIONS),
           "DIR/<class>/<image> (optionally under train/ val/ test/)"),
    scheme("imagenet", "data.imagefolder:open_imagenet", ("holdout", *TRANSFORM_OPTIONS),
           "ILSVRC-2012 layout DIR/val/<wnid>/*.JPEG; resize 256, centre crop 224"),
    scheme("npz", "data.npz:open_npz", (), "arrays x (uint8 NHWC) and y, optional ids, x_val/y_val"),
    scheme("cifar10c", "corruptions.readers:open_cifar10c", ("corruptions", "severities", "num_classes"),
           "CIFAR-10-C: <corruption>.npy + labels.npy"),
    scheme("imagenetc", "corruptions.readers:open_imagenetc", ("corruptions", "severities", *TRANSFORM_OPTIONS),
           "ImageNet-C: DIR/<corruption>/<severity>/<wnid>/*.JPEG"),
)


def builtin_datasets() -> dict[str, str]:
    """Name -> description of every built-in data set (the digits and the built-in OOD sets)."""
    from ..ood.builtin_sets import OOD_SETS

    return {"digits": DIGITS, **{name: s.description for name, s in OOD_SETS.items()}}

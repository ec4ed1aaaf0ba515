"""Data specs. Opening one reads its index only (ids, labels, classes, where each image lives); images are
decoded on demand (see DataSource). Schemes: `builtin:NAME`, `cifar10:DIR`, `imagefolder:DIR`, `imagenet:DIR`,
`npz:FILE`, and `cifar10c:DIR`, `imagenetc:DIR` (precomputed corruption sets, from the corruptions package)."""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, replace

from ..specs import Spec, parse_spec
from .source import DataSource, Origin

Opener = Callable[[str, str, dict[str, str]], DataSource]  # (target, split, options) -> source
TRANSFORM_OPTIONS = ("resize", "crop", "interpolation")


@dataclass(frozen=True)
class Scheme:
    """A data spec scheme: its opener ("module:function", imported on first use) and the query options it reads."""

    opener: str
    options: tuple[str, ...] = ()
    help: str = ""

    def open(self, target: str, split: str, options: dict[str, str]) -> DataSource:
        module, _, function = self.opener.partition(":")
        return getattr(importlib.import_module(module), function)(target, split, options)


SCHEMES: dict[str, Scheme] = {
    "builtin": Scheme("robustbench_local.data.builtin:open_builtin", ("size",), "built-in sets (`rbl list data`)"),
    "cifar10": Scheme("robustbench_local.data.cifar10:open_cifar10", (), "the CIFAR-10 python batches folder"),
    "imagefolder": Scheme("robustbench_local.data.imagefolder:open_imagefolder", ("holdout", *TRANSFORM_OPTIONS),
                          "DIR/<class>/<image> (optionally under train/ val/ test/)"),
    "imagenet": Scheme("robustbench_local.data.imagefolder:open_imagenet", ("holdout", *TRANSFORM_OPTIONS),
                       "ILSVRC-2012 layout DIR/val/<wnid>/*.JPEG; resize 256, centre crop 224"),
    "npz": Scheme("robustbench_local.data.npz:open_npz", (), "arrays x (uint8 NHWC) and y, optional ids, x_val/y_val"),
    "cifar10c": Scheme("robustbench_local.corruptions.readers:open_cifar10c",
                       ("corruptions", "severities", "num_classes"), "CIFAR-10-C: <corruption>.npy + labels.npy"),
    "imagenetc": Scheme("robustbench_local.corruptions.readers:open_imagenetc",
                        ("corruptions", "severities", *TRANSFORM_OPTIONS),
                        "ImageNet-C: DIR/<corruption>/<severity>/<wnid>/*.JPEG"),
}


def parse_data_spec(text: str) -> Spec:
    """`text` parsed as a data spec (unknown schemes and options refused)."""
    return parse_spec(text, "data", {name: scheme.options for name, scheme in SCHEMES.items()})


def load_data(spec: str, split: str = "test", limit: int | None = None) -> DataSource:
    """Open a data spec's `split` ('train', 'val', 'test') by reading its index; `limit` keeps a deterministic
    subset by id, chosen before any image is read."""
    s = parse_data_spec(spec)
    source = SCHEMES[s.scheme].open(s.target, split, s.options)
    return replace(source, origin=Origin(spec, split)).limit(limit)


__all__ = ["SCHEMES", "DataSource", "Origin", "Scheme", "load_data", "parse_data_spec"]

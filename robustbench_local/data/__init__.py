"""Data specs: `builtin:digits`, `cifar10:DIR`, `imagefolder:DIR[?resize=N&crop=N]`, `npz:FILE`, and the
schemes other packages provide (EXTERNAL_SCHEMES: `cifar10c:DIR`, `imagenetc:DIR` from corruptions/)."""
from __future__ import annotations

import importlib

from robustbench_local.ood.builtin_sets import OOD_SETS, load_ood_set  # built-in OOD sets live in ood/ (DESIGN §2)

from ..errors import SpecError
from ..parsing import parse_int
from ..specs import parse_spec
from .builtin import load_digits
from .cifar10 import load_cifar10
from .imagefolder import load_imagefolder
from .npz import load_npz
from .sampleset import SampleSet

# scheme -> "module:function" called as function(target, split, options) -> SampleSet (imported on first use)
EXTERNAL_SCHEMES = {"cifar10c": "robustbench_local.corruptions.readers:load_cifar10c",
                    "imagenetc": "robustbench_local.corruptions.readers:load_imagenetc"}
SCHEMES = {"builtin": (), "cifar10": (), "imagefolder": ("resize", "crop"), "npz": (),  # scheme -> its ?options
           "cifar10c": ("corruptions", "severities", "num_classes"),
           "imagenetc": ("corruptions", "severities", "resize", "crop")}
BUILTIN_DATASETS = {"digits": "scikit-learn's 8x8 digits upscaled to 32x32 RGB (train 1077 / val 360 / test 360)",
                    **{name: s.description for name, s in OOD_SETS.items()}}


def _int_option(options: dict[str, str], key: str) -> int | None:
    value = options.get(key)
    return None if value is None else parse_int(value, 1, f"?{key}=")


def load_data(spec: str, split: str = "test", limit: int | None = None) -> SampleSet:
    """Load a data spec's `split` ('train', 'val', 'test'); `limit` keeps a deterministic subset by id."""
    s = parse_spec(spec, "data", SCHEMES)
    if s.scheme == "builtin":
        if s.target not in BUILTIN_DATASETS:
            raise SpecError(f"unknown built-in data set {s.target!r}; known: {', '.join(BUILTIN_DATASETS)}")
        data = load_ood_set(s.target, split) if s.target in OOD_SETS else load_digits(split)
    elif s.scheme == "cifar10":
        data = load_cifar10(s.target, split)
    elif s.scheme in EXTERNAL_SCHEMES:
        module, _, function = EXTERNAL_SCHEMES[s.scheme].partition(":")
        data = getattr(importlib.import_module(module), function)(s.target, split, s.options)
    elif s.scheme == "imagefolder":
        data = load_imagefolder(s.target, split, _int_option(s.options, "resize"), _int_option(s.options, "crop"))
    else:
        data = load_npz(s.target, split)
    return data.limit(limit)


__all__ = ["BUILTIN_DATASETS", "SCHEMES", "SampleSet", "load_data"]

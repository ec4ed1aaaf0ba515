"""Data specs. Opening one reads its index only (ids, labels, classes, where each image lives); images are
decoded on demand (see DataSource). Schemes: `builtin:NAME`, `cifar10:DIR`, `imagefolder:DIR`, `imagenet:DIR`,
`npz:FILE`, and `cifar10c:DIR`, `imagenetc:DIR` (precomputed corruption sets, from the corruptions package), declared in
data/schemes.py; other packages add schemes through the `robustbench_local.data_schemes` entry-point group.
Importing this package imports no torch (`DataSource` and `Origin` are loaded on first access)."""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..registry import DATA_SCHEMES
from ..specs import Spec, parse_spec

if TYPE_CHECKING:
    from .source import DataSource, Origin




def parse_data_spec(text: str) -> Spec:
    """`text` parsed as a data spec (unknown schemes and options refused)."""
    return parse_spec(text, "data", {e.name: e.meta["options"] for e in DATA_SCHEMES.entries()})


def load_data(spec: str, split: str = "test", limit: int | None = None) -> DataSource:
    """Open a data spec's `split` ('train', 'val', 'test') by reading its index; `limit` keeps a deterministic
    subset by id, chosen before any image is read."""
    from .source import Origin

    s = parse_data_spec(spec)
    source = DATA_SCHEMES.load(s.scheme)(s.target, split, s.options)
    return replace(source, origin=Origin(spec, split)).limit(limit)


def __getattr__(name: str) -> Any:  # DataSource and Origin without importing torch at package import
    if name in ("DataSource", "Origin"):
        from . import source

        return getattr(source, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DataSource", "Origin", "load_data", "parse_data_spec"]

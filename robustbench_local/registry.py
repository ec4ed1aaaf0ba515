"""One registration mechanism for attacks, corruption backends, OOD detectors, suites and data schemes.

An `Entry` is plain data: a name, where the implementation lives ("module:attribute", imported on first use), a
one-line description, a reference, and the kind's declared options and capabilities (`meta`). Each kind's registry
holds the built-in entries (a tuple in a light module, named as "module:attribute") and the entries other packages
add through the entry-point group `robustbench_local.<kind>` (each entry point names an `Entry`), so listing and
`--help` never import an implementation. Code dispatches on an entry's declared `meta`, never on names or types.
"""
from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import EntryPoint, EntryPoints, entry_points
from types import MappingProxyType
from typing import Any

from .errors import SpecError


def load_target(target: str) -> Any:
    """The object at "package.module:attribute[.attribute]" (the module is imported now)."""
    module, _, attribute = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in filter(None, attribute.split(".")):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class Entry:
    """A registered implementation: `target` is loaded on first use; `meta` is its declared options and
    capabilities as plain data (the keys each kind reads are documented on its registry)."""

    name: str
    target: str
    description: str = ""
    reference: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if ":" not in self.target:
            raise SpecError(f"entry {self.name!r}: target {self.target!r} must read 'package.module:attribute'")
        object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))

    def load(self) -> Any:
        """The implementation (imported on first call)."""
        return load_target(self.target)


@cache
def installed_entry_points() -> EntryPoints:
    """Every installed package's entry points, read once per process (one scan serves all five groups)."""
    return entry_points()


def _plugin_entry(point: EntryPoint) -> Entry:
    """The Entry an installed package's entry point names; a broken one is refused in one line naming the package."""
    where = f"entry point {point.name} = {point.value} in group {point.group}"
    if point.dist is not None:
        where += f" (package {point.dist.name})"
    try:
        entry = point.load()
    except Exception as exc:  # noqa: BLE001  (any error of a third-party import: named, with the fix)
        raise SpecError(f"{where} cannot be loaded ({type(exc).__name__}: {exc}); fix or uninstall that "
                        "package") from None
    if not isinstance(entry, Entry):
        raise SpecError(f"{where} names a {type(entry).__name__}; it must name a robustbench_local.registry.Entry")
    return entry


class Registry:
    """Name -> Entry for one kind: built-ins first, then plugins' entry points, then `register`ed entries."""

    def __init__(self, kind: str, builtins: str, meta_keys: tuple[str, ...] = ()):
        self.kind = kind
        self.group = f"robustbench_local.{kind}"
        self.meta_keys = meta_keys  # what an entry of this kind declares in `meta`
        self._builtins = builtins
        self._entries: dict[str, Entry] | None = None
        self.added: dict[str, Entry] = {}  # registered in this process (`register`); tests may patch it

    def _load(self) -> dict[str, Entry]:
        if self._entries is None:
            entries = {e.name: e for e in load_target(self._builtins)}
            for point in installed_entry_points().select(group=self.group):
                entry = self._checked(_plugin_entry(point), f"entry point {point.name} = {point.value}")
                entries.setdefault(entry.name, entry)  # a plugin never replaces a built-in
            self._entries = entries
        return {**self._entries, **self.added}

    def _checked(self, entry: Entry, where: str) -> Entry:
        missing = [key for key in self.meta_keys if key not in entry.meta]
        if missing:
            raise SpecError(f"{where}: {self.kind} entry {entry.name!r} declares no {', '.join(missing)} in its meta; "
                            f"a {self.kind} entry declares {', '.join(self.meta_keys)} (see README, Plugins)")
        return entry

    def register(self, entry: Entry) -> Entry:
        """Add `entry` in this process (e.g. a suite defined in a test module); replaces one of the same name."""
        self.added[entry.name] = self._checked(entry, "register")
        return entry

    def names(self) -> list[str]:
        return list(self._load())

    def entries(self) -> list[Entry]:
        return list(self._load().values())

    def __contains__(self, name: object) -> bool:
        return name in self._load()

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def get(self, name: str) -> Entry:
        """The entry `name`, or a SpecError listing the known ones."""
        entries = self._load()
        if name not in entries:
            raise SpecError(f"unknown {self.kind.replace('_', ' ').rstrip('s')} {name!r}; known: {', '.join(entries)} "
                            f"(see `rbl list {LIST_NAMES.get(self.kind, self.kind)}`)")
        return entries[name]

    def load(self, name: str) -> Any:
        """The implementation registered as `name`."""
        return self.get(name).load()


LIST_NAMES = {"data_schemes": "datasets", "corruption_backends": "corruptions"}

ATTACKS = Registry("attacks", "robustbench_local.attacks.entries:ATTACKS",
                   ("norms", "kind", "random", "minimum_norm", "min_classes", "defaults"))
CORRUPTION_BACKENDS = Registry("corruption_backends", "robustbench_local.corruptions.entries:BACKENDS",
                               ("processes", "on_device"))
DETECTORS = Registry("detectors", "robustbench_local.ood.entries:DETECTORS", ("consumes", "fit_on"))
SUITES = Registry("suites", "robustbench_local.suite_entries:SUITES", ("options",))
DATA_SCHEMES = Registry("data_schemes", "robustbench_local.data.schemes:SCHEMES", ("options",))
REGISTRIES = (ATTACKS, CORRUPTION_BACKENDS, DETECTORS, SUITES, DATA_SCHEMES)

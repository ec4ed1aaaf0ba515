"""The metric contract: each metric the harness reports is declared once (name, direction, range, definition).

The gate, the reports' glossary and the tables read these declarations; a suite declares the metrics it adds in
its `metric_specs`, and `metric_spec(name)` finds a declaration by name.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class MetricSpec:
    """One metric: `higher_is_better` gives its direction, [low, high] its range, `definition` one line."""

    name: str
    higher_is_better: bool
    low: float
    high: float
    definition: str

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"


def index(specs: Iterable[MetricSpec]) -> dict[str, MetricSpec]:
    """Declarations by name; a name declared twice is a programming error."""
    by_name: dict[str, MetricSpec] = {}
    for spec in specs:
        if spec.name in by_name and by_name[spec.name] != spec:
            raise ValueError(f"metric {spec.name!r} is declared twice, differently")
        by_name[spec.name] = spec
    return by_name

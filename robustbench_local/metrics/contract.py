"""The metric contract: each metric the harness reports is declared once (name, direction, range, definition).

The gate, the reports' glossary and the tables read these declarations. The core classification and calibration
metrics are declared beside their implementations (`metrics.calibration.SPECS`, `metrics.temperature.SPECS`); a
suite declares the metrics it adds in its `metric_specs`. `metric_spec(name)` finds a declaration by name.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import SpecError


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


def declared() -> dict[str, MetricSpec]:
    """Every declared metric by name: the core ones (conformal at the default levels) and those of every registered
    suite."""
    from ..suites import all_suites  # the suites import this package
    from .calibration import SPECS as CORE
    from .conformal import metric_specs as conformal_specs
    from .selective import METRIC_SPECS as SELECTIVE
    from .temperature import SPECS as CALIBRATION

    return index([*CORE, *SELECTIVE, *conformal_specs(), *CALIBRATION,
                  *(spec for suite in all_suites() for spec in suite.metric_specs)])


def metric_spec(name: str) -> MetricSpec:
    """The declaration of metric `name`; SpecError (one line, naming close or known names) if there is none."""
    from .conformal import spec_of  # conformal metrics are declared at whatever levels a run chose

    specs = declared()
    if name in specs:
        return specs[name]
    if spec_of(name) is not None:
        return spec_of(name)
    close = difflib.get_close_matches(name, specs, n=5, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(sorted(specs))}"
    raise SpecError(f"unknown metric {name!r}; {hint} (see the metric definitions in a report)")


def temperature_scaled(spec: MetricSpec) -> MetricSpec:
    """The `_ts` variant of `spec`: the same metric after temperature scaling with the run's fitted T."""
    return MetricSpec(spec.name + "_ts", spec.higher_is_better, spec.low, spec.high,
                      f"{spec.definition} After temperature scaling: T fitted once on held-out clean data, applied "
                      "unchanged to every shifted condition.")

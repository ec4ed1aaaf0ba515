"""The metric definitions named in a report, generated from the metric declarations (`metrics.contract`)."""
from __future__ import annotations

from collections.abc import Iterable

from robustbench_local.metrics.contract import MetricSpec, declared

INTERVAL = ("[low, high]", "percentile bootstrap 95% interval over samples (B ≥ 1000, seeded by the run seed).")


def _range(spec: MetricSpec) -> str:
    def show(x: float) -> str:
        return {float("inf"): "∞", float("-inf"): "−∞"}.get(x, f"{x:g}")

    return f"[{show(spec.low)}, {show(spec.high)}]"


def glossary(names: Iterable[str] | None = None) -> tuple[tuple[str, str], ...]:
    """(name, text) for each declared metric (of `names` only, if given), then what an interval means."""
    specs = declared()
    wanted = specs if names is None else [n for n in dict.fromkeys(names) if n in specs]
    return (*((name, f"{specs[name].definition} {specs[name].direction.capitalize()}; range {_range(specs[name])}.")
              for name in wanted), INTERVAL)


GLOSSARY = glossary()

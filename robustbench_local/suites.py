"""The suite interface: a suite turns a condition into per-sample records, then into metrics. Suites are entries of
`robustbench_local.registry.SUITES` whose `meta["options"]` declare their settings as data, so the CLI builds its
flags without importing any suite. This module imports nothing heavy."""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .errors import SpecError
from .record_schema import CLASSIFICATION_SCHEMA
from .registry import SUITES, Entry, load_target

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from .data import DataSource
    from .metrics.contract import MetricSpec
    from .models import Classifier
    from .progress import Progress
    from .records import Records
    from .reports.runs import ReportRun
    from .reports.sections import Section, ShiftPanel, SummaryColumn


@dataclass(frozen=True)
class Condition:
    """One evaluation condition of a suite, e.g. name 'pgd:Linf:8/255' with JSON-able params."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SuiteOption:
    """A suite setting, shown as `--<flag>` on the CLI and as `<name>:` in a YAML config. `parse` reads its text: a
    function, or "module:function" imported when a value is read (so declaring an option imports nothing)."""

    name: str
    help: str
    default: Any
    parse: Callable[[str], Any] | str = str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def read(self, value: Any) -> Any:
        """The parsed setting from a flag's text, a config's number or list (read as comma-separated text), or
        None for the default; a bad value raises SpecError (the caller says where it came from)."""
        parse = load_target(self.parse) if isinstance(self.parse, str) else self.parse
        if value is None:
            return parse(self.default) if isinstance(self.default, str) else self.default
        text = option_text(value)
        try:
            return parse(text)
        except ValueError as exc:  # a suite's own parser may raise plain ValueError for a bad value
            raise SpecError(f"cannot read {text!r} ({exc})") from None


def option_text(value: Any) -> str:
    """A suite option's value as the text its parser reads: numbers as written, lists comma-separated."""
    def scalar(v: Any) -> bool:
        return isinstance(v, (str, int, float)) and not isinstance(v, bool)

    if scalar(value):
        return str(value)
    if isinstance(value, (list, tuple)) and all(scalar(v) for v in value):
        return ",".join(str(v) for v in value)
    raise SpecError(f"takes text, a number or a list of them, got {value!r}"[:200])


@dataclass
class CleanLogits:
    """The logits of a shard's clean images, computed once per worker and shared by every suite: call it for them.
    A suite that runs the model on the clean batches in its own pass (decoding each image once) reads `known` first
    and hands what it computed to `keep`; the numbers are the same either way (the same batches, the same model)."""

    compute: Callable[[], np.ndarray]
    store: dict[Any, np.ndarray]  # the worker's logits per shard
    key: Any

    def __call__(self) -> np.ndarray:
        if self.key not in self.store:
            self.store[self.key] = self.compute()
        return self.store[self.key]

    @property
    def known(self) -> np.ndarray | None:
        """The logits if some suite has computed them already, else None."""
        return self.store.get(self.key)

    def keep(self, logits: np.ndarray) -> None:
        self.store.setdefault(self.key, logits)


@dataclass
class TaskContext:
    """Everything a suite may use to run a shard of its conditions. `data` is the shard's samples (opened
    from the run's data spec, `data.origin`, when it has one); `clean_logits()` are theirs, computed once."""

    model: Classifier
    data: DataSource
    seed: int
    options: dict[str, Any]
    temperature: float | None
    batch_size: int
    progress: Progress
    run_dir: Path
    clean_logits: CleanLogits
    cache: dict[Any, Any] = field(default_factory=dict)  # the worker's scratch memory, shared by its tasks
    limit: int | None = None  # the run's --limit (a default for the sizes of other sets a suite opens)


class Suite(Protocol):
    """What the runner needs from a suite. `metrics` and `summary` have defaults in `BaseSuite`."""

    name: str
    description: str
    options: tuple[SuiteOption, ...]
    headline: tuple[str, ...]
    metric_specs: tuple[MetricSpec, ...]  # the metrics the suite adds to the core ones (metrics.contract)
    record_schema: dict[str, str]  # its record columns -> dtype kinds (records.py); shards are checked on saving
    demo_options: dict[str, Any]
    shardable: bool  # False: the suite needs all samples of a condition at once (one shard per task)
    grouped: bool  # True: a shard runs all of the suite's conditions in one pass over its images
    batch_dependent: bool  # True: records depend on the batch size (then it is part of each task's identity)

    def conditions(self, options: dict[str, Any]) -> list[Condition]: ...

    def run(self, condition: Condition, ctx: TaskContext) -> Records: ...

    def run_group(self, conditions: list[Condition], ctx: TaskContext) -> list[Records]: ...

    def metrics(self, records: Records, temperature: float | None, seed_parts: tuple) -> list[dict]: ...

    def summary(self, metrics: pd.DataFrame) -> list[dict]: ...

    # What the suite shows in a report (defaults in `BaseSuite`: a headline table, nothing else).
    def report_sections(self, runs: list[ReportRun], figures: bool = True) -> list[Section]: ...

    def summary_columns(self, runs: list[ReportRun]) -> list[SummaryColumn]: ...

    def reliability_panels(self, run: ReportRun) -> list[tuple[str, list[str]]]: ...

    def ece_shift_panel(self, runs: list[ReportRun]) -> ShiftPanel | None: ...


class BaseSuite:
    """Defaults for classification suites: calibration metrics per condition, no cross-condition summary, a report
    section with the headline metrics per condition; the description and options are those of the suite's registry
    entry."""

    name: str
    headline: tuple[str, ...] = ("acc",)
    metric_specs: tuple[MetricSpec, ...] = ()
    record_schema: dict[str, str] = CLASSIFICATION_SCHEMA
    demo_options: dict[str, Any] = {}
    shardable: bool = True
    grouped: bool = False
    report_module: str | None = None  # the module of the suite's report functions (imported when a report asks)

    def run_group(self, conditions: list[Condition], ctx: TaskContext) -> list[Records]:
        """Records of each condition (one after another; grouped suites share one pass over the images)."""
        return [self.run(condition, ctx) for condition in conditions]
    batch_dependent: bool = False

    @property
    def description(self) -> str:
        return SUITES.get(self.name).description

    @property
    def options(self) -> tuple[SuiteOption, ...]:
        return tuple(SUITES.get(self.name).meta.get("options", ()))

    def metrics(self, records: Records, temperature: float | None, seed_parts: tuple) -> list[dict]:
        from .metrics import classification_metrics, predictions

        labels = records.table["label"].to_numpy()
        return classification_metrics(predictions(records.logits, labels, temperature), seed_parts)

    def summary(self, metrics: pd.DataFrame) -> list[dict]:
        return []

    def _report(self, function: str) -> Callable | None:
        """`function` of the suite's `report_module`, if it has one."""
        return getattr(importlib.import_module(self.report_module), function, None) if self.report_module else None

    def report_sections(self, runs: list[ReportRun], figures: bool = True) -> list[Section]:
        """This suite's report sections (tables, figures, notes) from the report's runs; none when they hold no
        rows of it. Default: `sections(runs, figures)` of its report module, else one table of the `headline`
        metrics per run and condition."""
        from .reports.sections import headline_section

        own = self._report("sections")
        return own(runs, figures) if own else headline_section(self.name, self.description, self.headline, runs)

    def summary_columns(self, runs: list[ReportRun]) -> list[SummaryColumn]:
        """The suite's columns of the report's side-by-side summary (default: its report module's, else none)."""
        own = self._report("summary_columns")
        return own(runs) if own else []

    def reliability_panels(self, run: ReportRun) -> list[tuple[str, list[str]]]:
        """(title, conditions pooled) of the suite's panels in the report's reliability diagrams (default: its report
        module's, else none)."""
        own = self._report("reliability_panels")
        return own(run) if own else []

    def ece_shift_panel(self, runs: list[ReportRun]) -> ShiftPanel | None:
        """The suite's panel of the report's 'ECE vs shift' figure (default: its report module's, else none)."""
        own = self._report("ece_shift_panel")
        return own(runs) if own else None


def suite_entry(name: str, target: str, description: str, options: tuple[SuiteOption, ...] = (),
                reference: str = "") -> Entry:
    """A suite's registry entry: where its `Suite` object lives ("module:attribute") and its options as data."""
    return Entry(name, target, description, reference, {"options": options})


def get_suite(name: str) -> Suite:
    """The suite registered under `name` (its module is imported on first use)."""
    return SUITES.load(name)


def all_suites() -> list[Suite]:
    """Every registered suite, in registry order (imports them all)."""
    return [get_suite(name) for name in SUITES]


def all_options() -> list[tuple[str, SuiteOption]]:
    """(suite name, option) for every registered suite's declared options, without importing any suite."""
    return [(entry.name, opt) for entry in SUITES.entries() for opt in entry.meta.get("options", ())]

"""The suite interface: a suite turns a condition into per-sample records, then into metrics. Suites are entries of
`robustbench_local.registry.SUITES` whose `meta["options"]` declare their settings as data, so the CLI builds its
flags without importing any suite. This module imports nothing heavy."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .errors import SpecError
from .registry import SUITES, Entry, load_target

if TYPE_CHECKING:
    import pandas as pd

    from .data import DataSource
    from .models import Classifier
    from .progress import Progress
    from .records import Records


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
    clean_logits: Callable[[], Any]
    cache: dict[Any, Any] = field(default_factory=dict)  # the worker's scratch memory, shared by its tasks
    limit: int | None = None  # the run's --limit (a default for the sizes of other sets a suite opens)


class Suite(Protocol):
    """What the runner needs from a suite. `metrics` and `summary` have defaults in `BaseSuite`."""

    name: str
    description: str
    options: tuple[SuiteOption, ...]
    headline: tuple[str, ...]
    demo_options: dict[str, Any]
    shardable: bool  # False: the suite needs all samples of a condition at once (one shard per task)
    grouped: bool  # True: a shard runs all of the suite's conditions in one pass over its images
    batch_dependent: bool  # True: records depend on the batch size (then it is part of each task's identity)

    def conditions(self, options: dict[str, Any]) -> list[Condition]: ...

    def run(self, condition: Condition, ctx: TaskContext) -> Records: ...

    def run_group(self, conditions: list[Condition], ctx: TaskContext) -> list[Records]: ...

    def metrics(self, records: Records, temperature: float | None, seed_parts: tuple) -> list[dict]: ...

    def summary(self, metrics: pd.DataFrame) -> list[dict]: ...


class BaseSuite:
    """Defaults for classification suites: calibration metrics per condition, no cross-condition summary; the
    description and options are those of the suite's registry entry."""

    name: str
    headline: tuple[str, ...] = ("acc",)
    demo_options: dict[str, Any] = {}
    shardable: bool = True
    grouped: bool = False

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

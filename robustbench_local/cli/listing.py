"""`rbl list`: what the harness knows about."""
from __future__ import annotations

from collections.abc import Callable

import click

from ..data.schemes import builtin_datasets
from ..model_catalog import BUILTIN_MODELS, OPTIONS
from ..registry import DATA_SCHEMES, SUITES
from .app import cli


def _models() -> list[tuple[str, str]]:
    rows = [(f"builtin:{m.name}", m.description) for m in BUILTIN_MODELS.values()]
    return rows + [(f"{scheme}:...", "model spec form") for scheme in OPTIONS if scheme != "builtin"]


def _datasets() -> list[tuple[str, str]]:
    rows = [(f"builtin:{name}", text) for name, text in builtin_datasets().items()]
    forms = [(f"{e.name}:{'FILE' if e.name == 'npz' else 'DIR'}" + (f"[?{'&'.join(f'{o}=..' for o in options)}]"
              if (options := e.meta["options"]) else ""), e.description) for e in DATA_SCHEMES.entries()
             if e.name != "builtin"]
    return rows + forms


def _attacks() -> list[tuple[str, str]]:
    from robustbench_local.attacks.registry import describe

    return describe()


def _suites() -> list[tuple[str, str]]:
    return [(e.name, e.description) for e in SUITES.entries()]


def _detectors() -> list[tuple[str, str]]:
    from robustbench_local.ood.detectors import describe_detectors

    return describe_detectors()


def _corruptions() -> list[tuple[str, str]]:
    from robustbench_local.corruptions.listing import corruption_rows

    return corruption_rows()


LISTINGS: dict[str, Callable[[], list[tuple[str, str]]]] = {
    "models": _models, "datasets": _datasets, "suites": _suites, "attacks": _attacks, "corruptions": _corruptions,
    "detectors": _detectors,
}


@cli.command("list")
@click.argument("what", type=click.Choice(sorted(LISTINGS)))
def list_(what: str) -> None:
    """List built-in models, data sets, suites (and what later suites add).

    \b
    Example:
      rbl list models
    """
    rows = LISTINGS[what]()
    width = max(len(name) for name, _ in rows)
    for name, text in rows:
        click.echo(f"{name.ljust(width)}  {text}")

"""`rbl list`: what the harness knows about."""
from __future__ import annotations

from collections.abc import Callable

import click

from robustbench_local.ood.detectors import describe_detectors

from ..data import SCHEMES
from ..data.builtin import builtin_datasets
from ..models import BUILTIN_MODELS, LOADERS
from ..suites import all_suites
from .app import cli


def _models() -> list[tuple[str, str]]:
    rows = [(f"builtin:{m.name}", m.description) for m in BUILTIN_MODELS.values()]
    return rows + [(f"{scheme}:...", "model spec form") for scheme in LOADERS if scheme != "builtin"]


def _datasets() -> list[tuple[str, str]]:
    rows = [(f"builtin:{name}", text) for name, text in builtin_datasets().items()]
    forms = [(f"{name}:{'FILE' if name == 'npz' else 'DIR'}" + (f"[?{'&'.join(f'{o}=..' for o in s.options)}]"
              if s.options else ""), s.help) for name, s in SCHEMES.items() if name != "builtin"]
    return rows + forms


def _attacks() -> list[tuple[str, str]]:
    from robustbench_local.attacks.registry import describe

    return describe()


def _suites() -> list[tuple[str, str]]:
    return [(s.name, s.description) for s in all_suites()]


def _corruptions() -> list[tuple[str, str]]:
    from robustbench_local.corruptions.listing import corruption_rows

    return corruption_rows()


LISTINGS: dict[str, Callable[[], list[tuple[str, str]]]] = {
    "models": _models, "datasets": _datasets, "suites": _suites, "attacks": _attacks, "corruptions": _corruptions,
    "detectors": describe_detectors,
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

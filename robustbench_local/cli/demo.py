"""`rbl demo`: the built-in model on the built-in data across every suite."""
from __future__ import annotations

from pathlib import Path

import click

from ..api import run_spec
from ..progress import Progress
from ..runner import EvalSpec
from ..suites import all_suites
from .app import cli
from .table import print_headline

DEMO_MODEL = "builtin:digits-cnn"
DEMO_DATA = "builtin:digits"


@cli.command()
@click.option("--out", type=click.Path(file_okay=False), default="runs/demo", show_default=True,
              help="Run directory (re-running resumes).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.pass_context
def demo(ctx: click.Context, out: str, seed: int) -> None:
    """Evaluate builtin:digits-cnn on builtin:digits with every suite and print a summary.

    \b
    Example:
      rbl demo --out runs/demo
    """
    suites = all_suites()
    options = {k: v for s in suites for k, v in s.demo_options.items()}
    spec = EvalSpec(DEMO_MODEL, DEMO_DATA, [s.name for s in suites], seed=seed, options=options)
    click.echo(f"robustbench-local demo: {DEMO_MODEL} on {DEMO_DATA} (test split), suites: "
               f"{', '.join(spec.suites)}\n")
    result = run_spec(spec, Path(out), Progress(ctx.obj["quiet"]))
    print_headline(result.metrics)
    click.echo(f"\nfull table: {Path(out) / 'metrics.csv'}")
    from reports.build import write_report

    html, *_ = write_report([out], Path(out) / "report", ("html", "md"))
    click.echo(f"report: {html}")

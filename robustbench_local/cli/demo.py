"""`rbl demo`: the standard and the adversarially trained built-in models, every suite, side by side."""
from __future__ import annotations

from pathlib import Path

import click

from .app import OutputDir, cli

DEMO_MODELS = ("builtin:digits-cnn", "builtin:digits-cnn-at")
DEMO_DATA = "builtin:digits"


@cli.command()
@click.option("--out", type=OutputDir(), default="runs/demo", show_default=True,
              help="Directory of the demo's runs and report (re-running resumes).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.pass_context
def demo(ctx: click.Context, out: str, seed: int) -> None:
    """Evaluate builtin:digits-cnn and builtin:digits-cnn-at on builtin:digits with every suite.

    Prints the headline metrics side by side and writes a report comparing the two models.

    \b
    Example:
      rbl demo --out runs/demo
    """
    from robustbench_local.reports.build import write_report

    from ..api import run_spec
    from ..progress import Progress
    from ..runner import EvalSpec
    from ..suites import all_suites
    from .table import print_headline

    suites = all_suites()
    options = {k: v for s in suites for k, v in s.demo_options.items()}
    click.echo(f"robustbench-local demo: {' vs '.join(DEMO_MODELS)} on {DEMO_DATA} (test split), suites: "
               f"{', '.join(s.name for s in suites)}\n")
    progress = Progress(ctx.obj["quiet"])
    runs = {}
    for model in DEMO_MODELS:
        spec = EvalSpec(model, DEMO_DATA, [s.name for s in suites], seed=seed, options=options)
        runs[model.split(":")[-1]] = run_spec(spec, Path(out) / model.split(":")[-1], progress)
    print_headline({name: run.metrics for name, run in runs.items()})
    html, *_ = write_report([run.root for run in runs.values()], Path(out) / "report", ("html", "md"))
    click.echo(f"\nfull tables: {', '.join(str(run.root / 'metrics.csv') for run in runs.values())}")
    click.echo(f"report: {html}")

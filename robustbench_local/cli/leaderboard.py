"""`rbl leaderboard`: a local table of evaluated checkpoints."""
from __future__ import annotations

import click

from .app import cli

DB_HELP = "SQLite file (default: $RBL_LEADERBOARD or ~/.local/share/robustbench-local/leaderboard.sqlite)."


@cli.group("leaderboard")
def leaderboard() -> None:
    """Keep finished runs in a local SQLite leaderboard.

    \b
    Examples:
      rbl leaderboard add runs/demo
      rbl leaderboard show --suite clean --sort acc
    """


@leaderboard.command("add")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path())
@click.option("--db", type=click.Path(dir_okay=False), help=DB_HELP)
def add(run_dirs, db) -> None:
    """Add (or refresh) RUN_DIRS; adding the same run twice changes nothing."""
    from .. import leaderboard as lb
    from ..results import load_run

    con = lb.connect(db or lb.default_db())
    for path in run_dirs:
        click.echo(f"{lb.add_run(con, load_run(path))}  {path}")


@leaderboard.command("show")
@click.option("--db", type=click.Path(dir_okay=False), help=DB_HELP)
@click.option("--suite", help="Only this suite's metrics.")
@click.option("--metric", "metrics", multiple=True, help="Only these metric names (repeatable).")
@click.option("--sort", help="Sort by this column (a metric name or suite:condition:metric), best first.")
@click.option("--format", "fmt", type=click.Choice(["text", "csv", "markdown"]), default="text", show_default=True)
def show(db, suite, metrics, sort, fmt) -> None:
    """Print the leaderboard: one row per run, one column per suite:condition:metric."""
    from .. import leaderboard as lb

    frame = lb.table(lb.connect(db or lb.default_db()), suite, tuple(metrics), sort)
    if fmt == "csv":
        click.echo(frame.to_csv(index=False), nl=False)
    elif fmt == "markdown":
        cols = list(frame.columns)
        click.echo("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
        for row in frame.itertuples(index=False):
            click.echo("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row) + " |")
    else:
        click.echo(frame.to_string(index=False, float_format=lambda v: f"{v:.4f}") if len(frame) else "(empty)")

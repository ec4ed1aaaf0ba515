"""`rbl report`: runs side by side as Markdown, self-contained HTML, CSV and JSON (rendering lives in reports/)."""
from __future__ import annotations

import click

from .app import OutputDir, cli


@cli.command()
@click.argument("run_dirs", nargs=-1, required=True, metavar="RUN_DIR...")
@click.option("--out", required=True, type=OutputDir(), help="Directory for the report files.")
@click.option("--format", "formats", default="md,html,csv,json", show_default=True,
              help="Comma-separated formats: md (report.md + figures/*.png), html (one self-contained "
                   "report.html), csv (summary.csv, metrics_all.csv), json (report.json).")
def report(run_dirs: tuple[str, ...], out: str, formats: str) -> None:
    """Compare finished runs (rows = models) with every figure's 95% interval, per-suite detail and plots.

    \b
    Example:
      rbl report runs/demo runs/at --out runs/report --format md,html
    """
    from robustbench_local.reports.build import parse_formats, write_report

    for path in write_report(list(run_dirs), out, parse_formats(formats)):
        click.echo(str(path))

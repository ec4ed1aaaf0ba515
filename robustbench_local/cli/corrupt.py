"""`rbl corrupt`: write corrupted images as PNG (and a contact sheet) to look at them."""
from __future__ import annotations

from pathlib import Path

import click

from ..data import load_data
from .app import cli


@cli.command("corrupt")
@click.argument("data")
@click.option("--corruption", required=True, help="Corruption name (see `rbl list corruptions`).")
@click.option("--severity", type=int, required=True, help="Severity 1..5.")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output directory.")
@click.option("--params", help="Parameter set imagenet-c or cifar-10-c (default: chosen by image size).")
@click.option("--seed", type=int, default=0, show_default=True, help="Run seed (same images as `rbl evaluate`).")
@click.option("--limit", type=click.IntRange(min=1), default=16, show_default=True,
              help="Number of test images (a deterministic subset by id).")
@click.option("--sheet-index", type=click.IntRange(min=0), default=0, show_default=True,
              help="Which of those images goes on the contact sheet.")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Processes for the corruption step (0: in-process).")
def corrupt(data, corruption, severity, out, params, seed, limit, sheet_index, workers) -> None:
    """Corrupt DATA's test images with --corruption at --severity; write PNGs and contact_sheet.png to --out.

    \b
    Example:
      rbl corrupt builtin:digits --corruption fog --severity 3 --out runs/fog3
    """
    from corruptions.api import corrupt_images, resolve_params
    from corruptions.names import check_corruption, check_severity
    from corruptions.sheet import contact_sheet, write_pngs

    check_corruption(corruption)
    check_severity(severity)
    samples = load_data(data, "test", limit)
    params = resolve_params(params, samples.images, lambda m: click.echo(m, err=True))
    images = corrupt_images(samples.images, corruption, severity, seed, samples.ids, params, workers=workers)
    folder = Path(out) / f"{corruption}-{severity}"
    paths = write_pngs(images, samples.ids, folder)
    index = min(sheet_index, len(samples) - 1)
    sheet_path = Path(out) / "contact_sheet.png"
    contact_sheet(samples.images[index], str(samples.ids[index]), seed, params).save(sheet_path)
    click.echo(f"wrote {len(paths)} images to {folder} ({params} parameters) and {sheet_path} "
               f"(all corruptions x severities of {samples.ids[index]})")

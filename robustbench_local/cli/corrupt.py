"""`rbl corrupt`: write corrupted images as PNG (and a contact sheet) to look at them, or `--validate` the fast
backend against the reference (fidelity table)."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from .app import OutputDir, cli
from .evaluate import data_workers_option

PNG_LIMIT = 16
BATCH = 64  # images corrupted and written at a time


@cli.command("corrupt")
@click.argument("data")
@click.option("--corruption", help="Corruption name (see `rbl list corruptions`).")
@click.option("--severity", type=int, help="Severity 1..5.")
@click.option("--out", type=OutputDir(), help="Output directory.")
@click.option("--params", help="Parameter set imagenet-c or cifar-10-c (default: chosen by image size).")
@click.option("--backend", default="fast", show_default=True,
              help="Corruption backend: fast (batched torch) or reference (imagecorruptions).")
@click.option("--seed", type=int, default=0, show_default=True, help="Run seed (same images as `rbl evaluate`).")
@click.option("--limit", type=click.IntRange(min=1),
              help=f"Number of test images (a deterministic subset by id; default {PNG_LIMIT}, --validate: all).")
@click.option("--sheet-index", type=click.IntRange(min=0), default=0, show_default=True,
              help="Which of those images goes on the contact sheet.")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Processes for the reference backend (0: in-process).")
@click.option("--validate", is_flag=True,
              help="Compare the fast backend with the reference on DATA's test images and print the fidelity table "
                   "(exit 1 if a bound fails).")
@click.option("--model", help="With --validate: also compare this model's accuracy on both backends' outputs.")
@click.option("--corruptions", "names", default="all", show_default=True,
              help="With --validate: corruptions to check (all, common, a category or NAME,...).")
@click.option("--severities", default="1-5", show_default=True, help="With --validate: severities to check.")
@data_workers_option
@click.pass_context
def corrupt(ctx: click.Context, data, corruption, severity, out, params, backend, seed, limit, sheet_index, workers,
            validate, model, names, severities, data_workers) -> None:
    """Corrupt DATA's test images with --corruption at --severity; write PNGs and contact_sheet.png to --out.

    \b
    Examples:
      rbl corrupt builtin:digits --corruption fog --severity 3 --out runs/fog3
      rbl corrupt builtin:digits --validate --model builtin:digits-cnn
    """
    from robustbench_local.corruptions.api import check_size, corrupt_images, resolve_params
    from robustbench_local.corruptions.backends import get_backend
    from robustbench_local.corruptions.names import check_corruption, check_severity

    from ..progress import Progress

    get_backend(backend)
    note = Progress(ctx.obj["quiet"]).note
    if validate:
        _validate(data, params, seed, limit, workers, model, names, severities, note)
        return
    missing = [flag for flag, value in (("--corruption", corruption), ("--severity", severity), ("--out", out))
               if value is None]
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)} (or pass --validate)")
    from robustbench_local.corruptions.sheet import contact_sheet, write_pngs

    from ..data import load_data

    check_corruption(corruption)
    check_severity(severity)
    samples = load_data(data, "test", limit or PNG_LIMIT)
    check_size(*samples.image_shape[:2])
    params = resolve_params(params, samples.image_shape[:2], note)
    folder = Path(out) / f"{corruption}-{severity}"
    written = 0
    for start, batch in zip(range(0, len(samples), BATCH), samples.batches(BATCH), strict=True):
        ids = samples.ids[start:start + len(batch)]
        images = corrupt_images(batch, corruption, severity, seed, ids, params, backend=backend, workers=workers)
        written += len(write_pngs(images, ids, folder))
    index = min(sheet_index, len(samples) - 1)
    sheet_path = Path(out) / "contact_sheet.png"
    contact_sheet(samples.read(index)[0], str(samples.ids[index]), seed, params).save(sheet_path)
    click.echo(f"wrote {written} images to {folder} ({params} parameters, {backend} backend) and {sheet_path} "
               f"(all corruptions x severities of {samples.ids[index]})")


def _validate(data, params, seed, limit, workers, model, names, severities, note) -> None:
    from robustbench_local.corruptions.api import check_size, resolve_params
    from robustbench_local.corruptions.fidelity import compare, passed, report_lines
    from robustbench_local.corruptions.names import parse_corruptions, parse_severities

    from ..data import load_data
    from ..models import load_model

    corruptions, levels = parse_corruptions(names), parse_severities(severities)
    samples = load_data(data, "test", limit)
    check_size(*samples.image_shape[:2])
    params = resolve_params(params, samples.image_shape[:2], note)
    predict = None
    if model is not None:
        classifier = load_model(model)
        predict = lambda images: classifier.predict(images).argmax(1)  # noqa: E731
    click.echo(f"fidelity of the fast backend vs reference: {len(samples)} images of {data}, {params} parameters, "
               f"seed {seed}" + (f", model {model}" if model else ""), err=True)
    rows = compare(samples.images, samples.ids, seed, params, predict, samples.labels if model else None,
                   corruptions, levels, workers)
    click.echo("\n".join(report_lines(rows)))
    if not passed(rows):
        sys.exit(1)

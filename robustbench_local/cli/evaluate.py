"""`rbl evaluate`: run suites on a model and data set into a resumable run directory."""
from __future__ import annotations

from pathlib import Path

import click

from ..parsing import check_levels, parse_fraction
from ..suites import all_options
from .app import OutputDir, RblCommand, cli


def data_workers_option(fn):
    """`--data-workers N`: threads decoding image files ahead of the model (applied to this process when parsed)."""
    return click.option("--data-workers", type=click.IntRange(min=1), callback=_apply_data_workers,
                        help="Threads decoding image files ahead of the model (default: the CPUs available to this "
                             "process); never changes a number.")(fn)


def _apply_data_workers(ctx: click.Context, param: click.Parameter, n: int | None) -> int | None:
    from ..data.stream import set_workers  # numpy: only once a command runs, not for --help

    set_workers(n)
    return n


class WithSuiteOptions(RblCommand):
    """A command with one option per registered suite's declared setting (value kept as text and parsed by the
    suite), read from the registry each time it parses or shows help, so that no suite is imported and a suite
    registered later (a plugin, a test's) is there too."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        own = super().get_params(ctx)
        seen = {p.name for p in own}
        extra = []
        for suite, opt in all_options():
            if opt.name not in seen:
                seen.add(opt.name)
                extra.append(click.Option([opt.flag, opt.name], default=None,
                                          help=f"[{suite}] {opt.help} (default: {opt.default})"))
        return [*own[:-1], *extra, own[-1]] if own and own[-1].name == "help" else [*own, *extra]


@cli.command(cls=WithSuiteOptions)
@click.argument("model", required=False)
@click.option("--data", help="Data spec, e.g. builtin:digits, cifar10:DIR, imagefolder:DIR, npz:FILE.")
@click.option("--suite", "suites", multiple=True, help="Suite(s) to run, repeatable or comma-separated "
              "(default: clean). See `rbl list suites`.")
@click.option("--out", type=OutputDir(), required=True, help="Run directory (resumable).")
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate a deterministic subset of N test samples.")
@click.option("--seed", type=int, help="Run seed (default 0); every random draw derives from it.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Inference batch size (default 256).")
@click.option("--config", type=click.Path(dir_okay=False), help="YAML file with EvalSpec fields; flags win.")
@click.option("--arch", help="Architecture spec for a bare weights file, e.g. torchvision:resnet18?num_classes=10.")
@click.option("--trust-checkpoint", is_flag=True, default=None,
              help="Allow pickled checkpoints that can run code (only for files you trust).")
@click.option("--calibration-data", help="Data spec whose val split fits the temperature ('auto': the --data "
              "spec's val split; 'none': skip).")
@click.option("--conformal-alpha", help="Miscoverage levels of the conformal prediction sets fitted beside the "
              "temperature, comma-separated [default: 0.1,0.05, i.e. 90% and 95% sets].")
@click.option("--executor", type=click.Choice(["inprocess", "pool", "ray"]), default="inprocess", show_default=True,
              help="Where shards run: this process, a local process pool, or a Ray cluster.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes (pool) or CPUs of a local Ray instance; > 1 implies --executor pool.")
@click.option("--ray-address", help="Address of an existing Ray cluster (e.g. ray://head:10001); default: local.")
@click.option("--threads", type=click.IntRange(min=1), help="Threads of every inference, here and in every worker "
              "(default: torch's, usually one per core); records are bit-identical across executors at one count.")
@click.option("--shard-size", type=click.IntRange(min=1), help="Samples per shard (rounded up to a multiple of "
              "--batch-size); default: one shard per task (corruptions: shards whose logits fit in 256 MB).")
@data_workers_option
@click.pass_context
def evaluate(ctx: click.Context, model, data, suites, out, limit, seed, batch_size, config, arch, trust_checkpoint,
             calibration_data, conformal_alpha, executor, workers, ray_address, threads, shard_size, data_workers,
             **suite_options) -> None:
    """Evaluate MODEL on --data with the chosen suites; writes metrics.csv, metrics.json and manifest.json.

    \b
    MODEL forms: builtin:NAME, torchvision:NAME[?weights=PATH&num_classes=K], timm:NAME[?weights=PATH],
    torchscript:PATH?norm=N, export:PATH.pt2?norm=N, python:pkg.module:factory?norm=N (N: imagenet, cifar10,
    none, or mean=a,b,c&std=a,b,c), or PATH.safetensors|.pt with --arch.
    \b
    Example:
      rbl evaluate builtin:digits-cnn --data builtin:digits --suite clean --limit 200 --out runs/demo
    Re-running the same command resumes: finished tasks are never recomputed.
    \b
    Spread over 2 local processes, or a Ray cluster (the records of an in-process run with as many --threads,
    bit for bit, on the same kind of machine):
      rbl evaluate builtin:digits-cnn --data builtin:digits --workers 2 --threads 1 --shard-size 64 --out runs/demo
      rbl evaluate builtin:digits-cnn --data builtin:digits --executor ray --ray-address auto --out runs/demo
    """
    alphas = None if conformal_alpha is None else check_levels(
        [parse_fraction(a, "--conformal-alpha") for a in conformal_alpha.split(",")], "--conformal-alpha")
    import torch

    from ..api import run_spec
    from ..progress import Progress
    from ..runner import EvalSpec
    from ..runner.executors import make_executor
    from .table import print_headline

    suite_list = [s.strip() for entry in suites for s in entry.split(",") if s.strip()] or None
    given = {k: v for k, v in suite_options.items() if v is not None}
    fields = {"model": model, "data": data, "suites": suite_list, "seed": seed, "limit": limit,
              "batch_size": batch_size, "arch": arch, "trust_checkpoint": trust_checkpoint,
              "calibration_data": calibration_data, "data_workers": data_workers, "options": given,
              "conformal_alpha": alphas}
    if config:
        spec = EvalSpec.from_yaml(config, **fields)
    else:
        if not model or not data:
            raise click.UsageError("give MODEL and --data (or a --config file that sets them)")
        spec = EvalSpec(**{k: v for k, v in fields.items() if v is not None})
    progress = Progress(ctx.obj["quiet"])
    if threads:
        torch.set_num_threads(threads)
    result = run_spec(spec, Path(out), progress, executor=make_executor(executor, workers, ray_address, progress),
                      shard_size=shard_size)
    print_headline(result.metrics)
    click.echo(f"\nwrote {Path(out) / 'metrics.csv'} ({len(result.metrics)} rows)")

"""`rbl compare`: a model and its compressed copies evaluated side by side, with paired intervals on the changes."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import RunError, os_reason
from .app import OutputDir, cli
from .evaluate import WithSuiteOptions

LATENCY_DEFAULTS = {"latency_reps": 20, "latency_batch": 32, "latency_threads": 1}
MODEL_ONLY = ("data", "suites", "limit", "seed", "batch_size", "arch", "trust_checkpoint", "calibration_data",
              *LATENCY_DEFAULTS)  # settings of an evaluation, which --runs does not run


@cli.command("compare", cls=WithSuiteOptions)
@click.argument("models", nargs=-1, metavar="ORIGINAL COMPRESSED...")
@click.option("--runs", "as_runs", is_flag=True, help="The arguments are finished run directories (the original's "
              "first) to compare as they are: metric changes only, no model size or latency.")
@click.option("--data", help="Data spec every model is evaluated on, e.g. builtin:digits.")
@click.option("--suite", "suites", multiple=True, help="Suite(s) to run, repeatable or comma-separated "
              "(default: clean). See `rbl list suites`.")
@click.option("--out", type=OutputDir(), required=True,
              help="Directory of the runs (OUT/<name>/, cached and resumable) and of compare.md/.csv/.json.")
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate a deterministic subset of N test samples.")
@click.option("--seed", type=int, help="Run seed of every evaluation and of the paired bootstrap (default 0).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Inference batch size (default 256).")
@click.option("--arch", help="Architecture spec for models given as bare weights files.")
@click.option("--trust-checkpoint", is_flag=True, default=None,
              help="Allow pickled checkpoints that can run code (only for files you trust).")
@click.option("--calibration-data", help="Data spec whose val split fits the temperature ('auto': the --data "
              "spec's; 'none': skip).")
@click.option("--latency-reps", type=click.IntRange(min=1), help="Timed repetitions per model and batch size, "
              f"after 3 warm-up ones; the median is reported [default: {LATENCY_DEFAULTS['latency_reps']}].")
@click.option("--latency-batch", type=click.IntRange(min=1), help="Batch size timed besides 1 (1: batch 1 only) "
              f"[default: {LATENCY_DEFAULTS['latency_batch']}].")
@click.option("--latency-threads", type=click.IntRange(min=1), help="torch threads while latency is measured "
              f"[default: {LATENCY_DEFAULTS['latency_threads']}].")
@click.pass_context
def compare(ctx: click.Context, models, as_runs, data, suites, out, limit, seed, batch_size, arch, trust_checkpoint,
            calibration_data, latency_reps, latency_batch, latency_threads, **suite_options) -> None:
    """Evaluate ORIGINAL and each COMPRESSED model with the same seed, samples and options, then show per suite the
    change (compressed − original) of every headline metric with a paired-bootstrap 95% interval, and each model's
    size on disk, parameter count, sparsity and CPU latency per image (measured side by side in this process).

    \b
    Runs are cached in OUT/<name>/ (re-running resumes); OUT also gets compare.md, compare.csv and compare.json.
    Size on disk: a directory of `rbl compress`, its network file; a model given by spec, its state dict as
    safetensors (what `rbl compress --method prune` stores).
    \b
    Examples:
      rbl compress builtin:digits-cnn --method int8-static --data builtin:digits --out runs/int8
      rbl compress builtin:digits-cnn --method prune --amount 0.5 --out runs/pruned50
      rbl compare builtin:digits-cnn runs/int8 runs/pruned50 --data builtin:digits --suite clean,corruptions \\
          --out runs/compare
    Two finished runs (e.g. of `rbl evaluate`), metric changes only:
      rbl compare --runs runs/original runs/int8-clean --out runs/compare-runs
    """
    if len(models) < 2:
        raise click.UsageError("give the original and at least one compressed model (or run directory with --runs)")
    given = {k: v for k, v in suite_options.items() if v is not None}
    settings = {"data": data, "suites": suites or None, "limit": limit, "seed": seed, "batch_size": batch_size,
                "arch": arch, "trust_checkpoint": trust_checkpoint, "calibration_data": calibration_data,
                "latency_reps": latency_reps, "latency_batch": latency_batch, "latency_threads": latency_threads}
    if as_runs:
        extra = [k for k in MODEL_ONLY if settings[k] is not None] + sorted(given)
        if extra:
            raise click.UsageError(f"--runs compares finished runs as they are; drop "
                                   f"{', '.join('--' + k.replace('_', '-') for k in extra)}")
    elif not data:
        raise click.UsageError("give --data (the data every model is evaluated on), or --runs for run directories")

    from robustbench_local.reports import compare as render

    from ..compare import compare_models, compare_runs
    from ..latency import LatencySetup
    from ..progress import Progress
    from ..runner import EvalSpec

    progress = Progress(ctx.obj["quiet"])
    if as_runs:
        comparison = compare_runs(list(models), progress)
    else:
        suite_list = [s.strip() for entry in suites for s in entry.split(",") if s.strip()] or None
        fields = {"model": models[0], "data": data, "suites": suite_list, "seed": seed, "limit": limit,
                  "batch_size": batch_size, "arch": arch, "trust_checkpoint": trust_checkpoint,
                  "calibration_data": calibration_data, "options": given}
        template = EvalSpec(**{k: v for k, v in fields.items() if v is not None})
        latency = {k: settings[k] if settings[k] is not None else v for k, v in LATENCY_DEFAULTS.items()}
        setup = LatencySetup(tuple(dict.fromkeys((1, latency["latency_batch"]))), latency["latency_reps"],
                             threads=latency["latency_threads"])
        comparison = compare_models(list(models), template, Path(out), progress, setup)
    click.echo(render.text(comparison))
    written = _write_outputs(Path(out), comparison)
    click.echo(f"\nwrote {', '.join(map(str, written))}")


def _write_outputs(out: Path, comparison) -> list[Path]:
    """compare.md, compare.csv and compare.json in `out` (atomically)."""
    from robustbench_local.reports import compare as render

    from ..runner.store import atomic_write

    files = {"compare.md": render.markdown(comparison), "compare.csv": render.csv_frame(comparison).to_csv(index=False),
             "compare.json": render.to_json(comparison)}
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            atomic_write(out / name, content.encode())
    except OSError as exc:
        raise RunError(f"cannot write the comparison into {out} ({os_reason(out, exc)}); choose a writable --out") \
            from None
    return [out / name for name in files]

"""`rbl ci`: the robustness gate of a git repository's change (base ref vs head ref), for CI workflows."""
from __future__ import annotations

from pathlib import Path

import click

from ..suites import all_options
from .app import OutputDir, cli
from .evaluate import WithSuiteOptions


def _flags(given: dict[str, str | None]) -> dict[str, str]:
    """Suite options as `rbl evaluate` flags ({"--attack": "pgd"}), for the options given."""
    flags = {opt.name: opt.flag for _, opt in all_options()}
    return {flags[name]: value for name, value in given.items() if value is not None}


@cli.command("ci", cls=WithSuiteOptions)
@click.option("--repo", type=click.Path(file_okay=False), default=".", show_default=True, help="The git repository.")
@click.option("--base", "base_ref", required=True, help="Base ref or commit (the target branch), e.g. origin/main.")
@click.option("--head", "head_ref", default="HEAD", show_default=True, help="Head ref or commit (the change).")
@click.option("--checkpoint", required=True, help="The model's weights file: its path inside the repository.")
@click.option("--arch", required=True, help="Architecture spec of the weights, e.g. builtin:digits-cnn or "
              "python:pkg.module:factory (imported from each side's checkout).")
@click.option("--data", required=True, help="Data spec, the same for both sides (paths relative to the current "
              "directory).")
@click.option("--suite", "suites", multiple=True, help="Suite(s), repeatable or comma-separated (default: clean).")
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate a deterministic subset of N test samples.")
@click.option("--seed", type=int, default=0, show_default=True, help="Run seed of both evaluations and the gate.")
@click.option("--rules", "rules_path", default="gate.yaml", show_default=True,
              help="Rules file: its path inside the repository, read from the base ref.")
@click.option("--cache", type=click.Path(file_okay=False), default=".rbl-cache", show_default=True,
              help="Directory of cached baseline runs (one per cache key).")
@click.option("--out", type=OutputDir(), default="rbl-ci", show_default=True,
              help="Where gate.xml, gate.md, gate.json and the candidate run go.")
@click.option("--print-key", is_flag=True, help="Print the baseline's cache key (for actions/cache) and exit.")
@click.pass_context
def ci(ctx: click.Context, repo, base_ref, head_ref, checkpoint, arch, data, suites, limit, seed, rules_path, cache,
       out, print_key, **suite_options) -> None:
    """Gate a change: evaluate the checkpoint at --base (cached) and at --head, judge with the rules at --base.

    Exit 0: passed (or skipped: the base has no checkpoint); 1: a regression; 2: bad input.
    Writes OUT/gate.xml (JUnit), OUT/gate.md (the pull-request comment), OUT/gate.json.

    \b
    Example (the repository's own workflow, docs/github-actions-gate.yml):
      rbl ci --base origin/main --checkpoint robustbench_local/zoo/digits-cnn.safetensors \\
             --arch builtin:digits-cnn --data builtin:digits --suite clean,attacks --attack fgsm --eps 0.1 --limit 300
    """
    from robustbench_local.reports.gate import text_table

    from ..ci import CiSpec, cache_key, resolve, run_ci, write_outputs

    names = tuple(s.strip() for entry in suites for s in entry.split(",") if s.strip()) or ("clean",)
    spec = CiSpec(checkpoint, arch, data, names, _flags(suite_options), limit, seed, rules_path)
    if print_key:
        click.echo(cache_key(resolve(Path(repo), base_ref), spec))
        return
    result = run_ci(repo, base_ref, head_ref, spec, cache, out, ctx.obj["quiet"])
    paths = write_outputs(result, Path(out))
    if result.verdicts:
        click.echo(text_table(result.verdicts))
    for note in result.notes:
        click.echo(f"note: {note}")
    failed = sum(not v.passed for v in result.verdicts)
    click.echo(f"\ngate: {result.status.upper() if failed else result.status} ({failed} of {len(result.verdicts)} "
               f"checks failed; baseline: {result.baseline_source or 'none'}); wrote {', '.join(map(str, paths.values()))}")
    if failed:
        raise SystemExit(1)

"""`rbl gate`: fail a build when robustness regresses."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import RunError, os_reason
from .app import cli

BASELINE_COLUMNS = ("suite", "condition", "metric", "value", "ci_low", "ci_high")
READERS = {".csv": "csv", ".json": "json"}


def _baseline(path: str):
    """A baseline run, or the metrics table of one (checked for the columns the gate reads)."""
    import pandas as pd

    from ..results import load_run

    p = Path(path)
    if p.is_dir():
        return load_run(p)
    if p.suffix not in READERS or not p.is_file():
        raise RunError(f"baseline {path} is neither a run directory nor a metrics.csv/metrics.json file")
    fix = "pass a run directory or its metrics.csv/metrics.json"
    try:
        frame = pd.read_csv(p) if READERS[p.suffix] == "csv" else pd.read_json(p, orient="records")
    except (OSError, ValueError) as exc:  # pandas' parse errors, bad encodings and empty files are ValueErrors
        reason = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        raise RunError(f"baseline {path} is not a metrics table ({reason}); {fix}") from None
    missing = [c for c in BASELINE_COLUMNS if c not in frame]
    numeric = BASELINE_COLUMNS[3:]
    if missing or any(not pd.api.types.is_numeric_dtype(frame[c]) for c in numeric):
        raise RunError(f"baseline {path} is not a metrics table (it needs the columns {', '.join(BASELINE_COLUMNS)}, "
                       f"{', '.join(numeric)} numeric); {fix}")
    return frame


def _write(path: str, data: bytes, what: str) -> None:
    from ..runner.store import atomic_write

    try:
        atomic_write(Path(path), data)
    except OSError as exc:
        raise RunError(f"cannot write the {what} {path} ({os_reason(Path(path), exc)}); "
                       "choose a path in a writable directory") from None


@cli.command("gate")
@click.option("--baseline", help="Baseline run directory, or its metrics.csv/metrics.json (floor rules only).")
@click.option("--candidate", type=click.Path(), help="Candidate run directory.")
@click.option("--rules", "rules_path", type=click.Path(dir_okay=False), required=True, help="Rules YAML file.")
@click.option("--junit", type=click.Path(dir_okay=False), help="Write JUnit XML here.")
@click.option("--summary", type=click.Path(dir_okay=False), help="Write a Markdown summary here.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the paired bootstrap.")
@click.option("--init", "init", is_flag=True, help="Write rules proposed from --baseline's intervals and exit.")
@click.option("--force", is_flag=True, help="With --init: overwrite an existing rules file.")
def gate(baseline, candidate, rules_path, junit, summary, seed, init, force) -> None:
    """Compare --candidate with --baseline under --rules; exit 0 pass, 1 regression, 2 misuse.

    \b
    Rules file:
      rules:
        - {metric: acc, suite: clean, condition: clean, max_drop: 0.01}   # at most 1 point lower
        - {metric: ece_15_equal_width, suite: clean, max_rise: 0.02}
        - {metric: acc, suite: clean, min: 0.95}                          # absolute floor
    \b
    Examples:
      rbl gate --init --baseline runs/main --rules gate.yaml
      rbl gate --baseline runs/main --candidate runs/pr --rules gate.yaml --junit gate.xml --summary gate.md
    """
    from robustbench_local.reports.gate import junit_xml, markdown, text_table

    from ..gate import judge, load_rules
    from ..gate_init import propose_rules, rules_document
    from ..results import load_run

    if init:
        if not baseline:
            raise click.UsageError("--init needs --baseline RUN_DIR")
        if Path(rules_path).exists() and not force:
            raise RunError(f"rules file {rules_path} exists; pass --force to overwrite it, or choose another path")
        rules = propose_rules(load_run(baseline))
        _write(rules_path, rules_document(rules, str(baseline)).encode(), "rules file")
        click.echo(f"wrote {len(rules)} rules to {rules_path} (allowances: the width of each metric's 95% interval)")
        return
    if not candidate:
        raise click.UsageError("give --candidate RUN_DIR (and --baseline for drop rules)")
    verdicts = judge(_baseline(baseline) if baseline else None, load_run(candidate), load_rules(rules_path), seed)
    click.echo(text_table(verdicts))
    if junit:
        _write(junit, junit_xml(verdicts), "JUnit XML")
    if summary:
        _write(summary, markdown(verdicts).encode(), "Markdown summary")
    failed = [v for v in verdicts if not v.passed]
    click.echo(f"\ngate: {'FAILED' if failed else 'passed'} ({len(failed)} of {len(verdicts)} checks failed)")
    if failed:
        raise SystemExit(1)

"""Helpers shared by the model- and data-loading tests: run the CLI in-process and check its error shape."""
from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass

from click.testing import CliRunner


@dataclass(frozen=True)
class CliOutcome:
    exit_code: int
    stdout: str
    stderr: str


def run_rbl(*args: str) -> CliOutcome:
    """Invoke `rbl ARGS` in-process (stdout and stderr kept apart)."""
    from robustbench_local.cli import cli

    with warnings.catch_warnings():  # show warnings on (captured) stderr as a plain `rbl` run would
        warnings.resetwarnings()
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", category)
        warnings.showwarning = _warning_to_stderr
        result = CliRunner().invoke(cli, ["--quiet", *args], catch_exceptions=False)
    return CliOutcome(result.exit_code, result.stdout, result.stderr)


def _warning_to_stderr(message, category, filename, lineno, file=None, line=None) -> None:
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def assert_one_line_error(outcome: CliOutcome, *needles: str) -> str:
    """Exit code 2, exactly one non-empty stderr line starting with 'error:', no traceback; returns the line."""
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    assert outcome.exit_code == 2, (outcome.exit_code, outcome.stderr)
    assert len(lines) == 1, outcome.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in outcome.stderr + outcome.stdout
    for needle in needles:
        assert needle.lower() in lines[0].lower(), (needle, lines[0])
    return lines[0]

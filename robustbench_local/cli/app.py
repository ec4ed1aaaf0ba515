"""The `rbl` command group: global flags and the one place errors become exit codes."""
from __future__ import annotations

import sys

import click

from ..errors import RBLError


class Rbl(click.Group):
    """Maps harness and usage errors to one line on stderr and exit code 2 (`--debug` shows the traceback)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            where = f"rbl {exc.ctx.command.name}" if exc.ctx and exc.ctx.parent else "rbl"
            click.echo(f"error: {exc.format_message()} (see `{where} --help`)", err=True)
            sys.exit(2)
        except click.ClickException as exc:
            click.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except RBLError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted: finished tasks are kept; run the same command again to resume", err=True)
            ctx.exit(130)


@click.group(cls=Rbl, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.option("--quiet", is_flag=True, help="No progress bars or notices.")
@click.version_option(package_name="robustbench-local")
@click.pass_context
def cli(ctx: click.Context, debug: bool, quiet: bool) -> None:
    """robustbench-local: how robust is your image classifier?

    \b
    Example:
      rbl evaluate builtin:digits-cnn --data builtin:digits --suite clean --out runs/clean
    """
    ctx.obj = {"debug": debug, "quiet": quiet}  # progress bars also switch off by themselves off a TTY

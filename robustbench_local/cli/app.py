"""The `rbl` command group: global flags and the one place errors become exit codes."""
from __future__ import annotations

import difflib
import sys

import click

from ..errors import RBLError

GLOBAL_FLAGS = ("--debug", "--quiet")  # accepted before or after the subcommand: `rbl evaluate ... --quiet`


class RblCommand(click.Command):
    """A subcommand that also reads the group's flags (`--quiet`, `--debug`) where users type them: after it."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.parent is not None and ctx.parent.obj is not None:
            cut = args.index("--") if "--" in args else len(args)
            for flag in GLOBAL_FLAGS:
                if flag in args[:cut]:
                    ctx.parent.obj[flag[2:]] = True
            args = [a for a in args[:cut] if a not in GLOBAL_FLAGS] + args[cut:]
        return super().parse_args(ctx, args)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_options(ctx, formatter)
        with formatter.section("Global options (before or after the command)"):
            formatter.write_dl([("--quiet", "No progress bars or notices."),
                                ("--debug", "Show full tracebacks instead of one-line errors.")])


class OutputDir(click.Path):
    """A directory to write into; refuses an empty value, which would write into the current directory (an unset
    shell variable, as in `--out "$OUT"`)."""

    def __init__(self) -> None:
        super().__init__(file_okay=False)

    def convert(self, value, param, ctx):
        if isinstance(value, str) and not value.strip():
            self.fail("is empty; give a directory to write into", param, ctx)
        return super().convert(value, param, ctx)


class Rbl(click.Group):
    """Maps harness and usage errors to one line on stderr and exit code 2 (`--debug` shows the traceback)."""

    group_class = type  # subgroups (`rbl leaderboard`) resolve command names the same way
    command_class = RblCommand

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            click.echo(f"error: {exc.format_message()} (see `{command_path(exc.ctx)} --help`)", err=True)
            sys.exit(2)
        except click.ClickException as exc:
            click.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name = args[0]
        if self.get_command(ctx, name) is None and not ctx.resilient_parsing and not name.startswith("-"):
            raise click.UsageError(f"no such command {name!r}{closest_command(ctx.find_root().command, name)}", ctx)
        return super().resolve_command(ctx, args)

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


def command_path(ctx: click.Context | None) -> str:
    """'rbl leaderboard add' for the context of that command ('rbl' at the top)."""
    names = []
    while ctx is not None and ctx.parent is not None:
        names.insert(0, ctx.command.name)
        ctx = ctx.parent
    return " ".join(["rbl", *names])


def closest_command(root: click.Command, name: str) -> str:
    """'; did you mean `rbl leaderboard add`?' for the command, at any depth, whose name is closest to `name`."""
    paths: dict[str, str] = {}

    def walk(group: click.Command, prefix: str) -> None:
        for sub, command in getattr(group, "commands", {}).items():
            paths[f"{prefix} {sub}"] = sub
            walk(command, f"{prefix} {sub}")

    walk(root, "rbl")
    close = difflib.get_close_matches(name, sorted(set(paths.values())), n=1)
    return next((f"; did you mean `{path}`?" for path, sub in paths.items() if close and sub == close[0]), "")


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

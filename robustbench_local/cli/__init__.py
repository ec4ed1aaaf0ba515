"""The `rbl` command line. Each command lives in its own module and registers on the `cli` group."""
from . import ci, compare, compress, corrupt, demo, evaluate, gate, leaderboard, listing, report, train  # noqa: F401  (registration)
from .app import cli


def main() -> None:
    cli(prog_name="rbl")


__all__ = ["cli", "main"]

"""The `rbl` command line. Each command lives in its own module and registers on the `cli` group."""
from ..allocator import keep_freed_buffers
from . import ci, compare, compress, corrupt, demo, evaluate, gate, leaderboard, listing, report, train  # noqa: F401  (registration)
from .app import cli


def main() -> None:
    keep_freed_buffers()
    cli(prog_name="rbl")


__all__ = ["cli", "main"]

"""Progress bars: shown on a terminal, silent when quiet or when stderr is not a TTY."""
from __future__ import annotations

import sys
from dataclasses import dataclass

from tqdm.auto import tqdm


@dataclass(frozen=True)
class Progress:
    """Factory of tqdm bars that all obey one `quiet` switch."""

    quiet: bool = False

    def bar(self, total: int | None, desc: str, unit: str = "it") -> tqdm:
        disable = self.quiet or not sys.stderr.isatty()
        return tqdm(total=total, desc=desc, unit=unit, disable=disable, leave=False, dynamic_ncols=True)

    def note(self, message: str) -> None:
        """A one-line notice on stderr (suppressed when quiet)."""
        if not self.quiet:
            print(message, file=sys.stderr)

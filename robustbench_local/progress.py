"""Progress: bars on a terminal; off a terminal (CI logs), a plain line at a steady interval; nothing when quiet.

Off a terminal a bar prints `desc: done/total unit, elapsed H:MM:SS, ~H:MM:SS left` on stderr at most once per
`RBL_PROGRESS_INTERVAL` seconds (default 30), plus a last line when it finishes after having printed one.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TextIO

from tqdm.auto import tqdm

from .errors import SpecError

INTERVAL_ENV = "RBL_PROGRESS_INTERVAL"
DEFAULT_INTERVAL = 30.0


def log_interval() -> float:
    """Seconds between two progress lines in a log (`$RBL_PROGRESS_INTERVAL`, default 30)."""
    text = os.environ.get(INTERVAL_ENV, "").strip()
    if not text:
        return DEFAULT_INTERVAL
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise SpecError(f"{INTERVAL_ENV}={text!r} must be a number of seconds >= 0, e.g. 30")
    return seconds


def _clock(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))


class LogLines:
    """A bar for logs: the same `update` / context-manager use as tqdm, printing whole lines at an interval."""

    def __init__(self, total: int | None, desc: str, unit: str, interval: float, stream: TextIO) -> None:
        self.total, self.desc, self.unit, self.interval, self.stream = total, desc, unit, interval, stream
        self.n, self.shown, self.closed = 0, None, False
        self.start = self.last = time.monotonic()

    def __enter__(self) -> LogLines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.monotonic() - self.last >= self.interval:
            self.emit()

    def close(self) -> None:
        """A last line if any was printed and the count moved since, so a log never ends on a stale count."""
        if self.shown is not None and self.shown != self.n and not self.closed:
            self.emit()
        self.closed = True

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        done = f"{self.n}/{self.total}" if self.total else str(self.n)
        text = f"{self.desc}: {done} {self.unit}, elapsed {_clock(elapsed)}"
        if self.total and 0 < self.n < self.total:
            text += f", ~{_clock(elapsed / self.n * (self.total - self.n))} left"
        return text

    def emit(self) -> None:
        print(self.line(), file=self.stream, flush=True)
        self.shown, self.last = self.n, time.monotonic()


@dataclass(frozen=True)
class Progress:
    """Factory of progress bars that all obey one `quiet` switch."""

    quiet: bool = False

    def bar(self, total: int | None, desc: str, unit: str = "it") -> tqdm | LogLines:
        """A tqdm bar on a terminal, periodic log lines elsewhere, a silent bar when quiet."""
        if not self.quiet and not sys.stderr.isatty():
            return LogLines(total, desc, unit, log_interval(), sys.stderr)
        return tqdm(total=total, desc=desc, unit=unit, disable=self.quiet, leave=False, dynamic_ncols=True)

    def note(self, message: str) -> None:
        """A one-line notice on stderr (suppressed when quiet)."""
        if not self.quiet:
            print(message, file=sys.stderr)

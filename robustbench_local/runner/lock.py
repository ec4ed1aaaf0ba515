"""One process per run directory: an exclusive `flock` on DIR/run.lock, which also records its holder.

The kernel drops the lock when its process ends, however it ends, so a killed run never blocks the directory;
the record it leaves behind (pid, host, start time) only names it. The lock is re-entrant within a process.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from pathlib import Path

from ..errors import RunError
from ..progress import Progress

LOCK = "run.lock"
_held: dict[Path, int] = {}  # run dirs this process holds -> depth


def make_run_dir(root: Path) -> None:
    """Create the run directory `root` (and its parents), or say in one line why it cannot be."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot create the run directory {root} ({exc.strerror or exc}); choose another --out") \
            from None


@contextmanager
def run_lock(root: Path, progress: Progress = Progress()) -> Iterator[None]:
    """Hold the run directory `root` (created if needed) while the block runs; RunError if another process does."""
    make_run_dir(root)
    key = root.resolve()
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    fd = _open(root / LOCK)
    try:
        if fd is not None and _acquire(fd, root, progress):
            _record(fd, _holder())
        _held[key] = 1
        try:
            yield
        finally:
            del _held[key]
            if fd is not None:
                _record(fd, "")  # a clean release leaves an empty record
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock


def _open(path: Path) -> int | None:
    """The lock file's descriptor: read-write, read-only in a folder this process cannot write (a finished run
    is still readable there), or None when it cannot even be created (nothing can be written then either)."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise RunError(f"cannot open {path} ({exc.strerror or exc}); choose another --out") from None
    try:
        return os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None


def _acquire(fd: int, root: Path, progress: Progress) -> bool:
    """Lock `fd` or refuse; True if the lock is held (False on a file system without locks)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise RunError(f"{root} is in use by another rbl process ({_describe(_read(fd)) or 'unknown holder'}); "
                       "wait for it to finish or choose another --out") from None
    except OSError as exc:
        progress.note(f"notice: cannot lock {root} ({exc.strerror or exc}); make sure no other process uses it")
        return False
    left = _read(fd)
    if left:
        progress.note(f"notice: taking over {root} from {_describe(left)}, which is no longer running")
    return True


def _holder() -> str:
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                       "started": datetime.now(timezone.utc).isoformat(timespec="seconds")})


def _read(fd: int) -> str:
    return os.pread(fd, 4096, 0).decode(errors="replace").strip()


def _describe(record: str) -> str:
    try:
        holder = json.loads(record)
        return f"pid {holder['pid']} on {holder['host']}, started {holder['started']}"
    except (ValueError, TypeError, KeyError):
        return record[:200]


def _record(fd: int, text: str) -> None:
    """Replace the lock file's record. On a read-only run dir the record cannot be written: the flock alone holds the
    lock there, and a waiting process names it without its holder."""
    with suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode(), 0)

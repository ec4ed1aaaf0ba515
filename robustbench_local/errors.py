"""Typed errors. Each message names the problem and the fix; the CLI prints it on one line, exit code 2."""
from pathlib import Path


class RBLError(Exception):
    """Base class for every error the harness raises on purpose.

    Its message is one printable line: control characters from the user's text it quotes (a newline in a path
    or a config key) are shown escaped, as `\\n`.
    """

    def __str__(self) -> str:
        return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in super().__str__())


class SpecError(RBLError):
    """A model, data or evaluation spec that cannot be parsed or is unknown."""


class ModelError(RBLError):
    """A model that cannot be loaded, or produces unusable outputs."""


class CheckpointRefused(ModelError):
    """A checkpoint that would run arbitrary code when unpickled."""


class DataError(RBLError):
    """A data set that is missing, malformed or inconsistent."""


class RunError(RBLError):
    """A run directory that is inconsistent with the requested evaluation."""


class IncompatibleRuns(RBLError):
    """Two runs that cannot be compared (different data, ids or class counts)."""


def os_reason(path: Path, exc: OSError) -> str:
    """Why `path` could not be opened or written, in words: names a parent that is a regular file."""
    blocker = next((p for p in path.parents if p.is_file()), None)
    return f"{blocker} is a file, not a directory" if blocker else exc.strerror or str(exc)

"""Reading the YAML files users write (EvalSpec configs, gate rules) with one-line errors."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import SpecError


def read_yaml_document(path: str | Path, what: str, fix: str) -> tuple[Any, yaml.Node | None]:
    """The parsed file and its node tree (whose marks give line numbers for error messages).

    A missing file says `fix`; an unreadable file, one that is not UTF-8 or not valid YAML names the problem
    and the line where it is.
    """
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise SpecError(f"{what} {path} does not exist; {fix}") from None
    except IsADirectoryError:
        raise SpecError(f"{what} {path} is a directory; pass the YAML file itself") from None
    except OSError as exc:
        raise SpecError(f"{what} {path} cannot be read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise SpecError(f"{what} {path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); "
                        "save it as UTF-8") from None
    try:
        return _parse(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{what} {path} is not valid YAML ({_problem(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - besides YAMLError, PyYAML raises ValueError, IndexError, ... on
        # malformed tagged scalars (`!!int _`) and RecursionError on deep nesting: all mean invalid YAML
        reason = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        raise SpecError(f"{what} {path} is not valid YAML ({reason})") from None


def _parse(text: str) -> tuple[Any, yaml.Node | None]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        return (loader.construct_document(node) if node is not None else None), node
    finally:
        loader.dispose()


def _problem(exc: yaml.YAMLError) -> str:
    """'line L, column C: what is wrong', from PyYAML's error (lines and columns count from 1)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}" + (f" ({context})" if context else "")


def read_yaml(path: str | Path, what: str, fix: str) -> Any:
    """The parsed file ({} when empty); errors as read_yaml_document."""
    return read_yaml_document(path, what, fix)[0] or {}

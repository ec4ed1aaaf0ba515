"""Reading the YAML files users write (EvalSpec configs, gate rules) with one-line errors."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import SpecError


def read_yaml_document(path: str | Path, what: str, fix: str) -> tuple[Any, yaml.Node | None]:
    """The parsed file and its node tree (whose marks give line numbers for error messages).

    A missing file says `fix`; an unreadable file, one that is not UTF-8 or not valid YAML names the problem.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{what} {path} does not exist; {fix}") from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"{what} {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise SpecError(f"{what} {path} cannot be read ({exc.strerror or exc})") from None
    try:
        return _parse(text)
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


def read_yaml(path: str | Path, what: str, fix: str) -> Any:
    """The parsed file ({} when empty); errors as read_yaml_document."""
    return read_yaml_document(path, what, fix)[0] or {}

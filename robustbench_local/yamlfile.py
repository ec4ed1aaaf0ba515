"""Reading the YAML files users write (EvalSpec configs, gate rules) with one-line errors."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import SpecError


def read_yaml(path: str | Path, what: str, fix: str) -> Any:
    """The parsed file; a missing file says `fix`, invalid YAML names the first problem."""
    try:
        return yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise SpecError(f"{what} {path} does not exist; {fix}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{what} {path} is not valid YAML ({str(exc).splitlines()[0]})") from None

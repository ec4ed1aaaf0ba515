"""Parsing of `scheme:target?key=value&...` spec strings shared by model and data specs."""
from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from .errors import SpecError


@dataclass(frozen=True)
class Spec:
    """A parsed spec: `scheme`, `target` (name or path) and query `options`."""

    scheme: str
    target: str
    options: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.options.items())
        return f"{self.scheme}:{self.target}" + (f"?{query}" if query else "")


def parse_spec(text: str, kind: str, schemes: set[str]) -> Spec:
    """Split `text` into scheme, target and options; `kind` ('model'/'data') appears in errors."""
    body, _, query = text.partition("?")
    scheme, sep, target = body.partition(":")
    if not sep or scheme not in schemes or not target:
        known = ", ".join(sorted(f"{s}:..." for s in schemes))
        raise SpecError(f"unknown {kind} spec {text!r}: use one of {known}")
    return Spec(scheme, target, dict(parse_qsl(query, keep_blank_values=True)))

"""Parsing of `scheme:target?key=value&...` spec strings shared by model and data specs.

Every scheme declares the query options it reads (`Schemes`); an option it does not declare is refused with the
closest declared name, so a typo such as `?resise=256` never passes silently.
"""
from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from .errors import SpecError

Schemes = Mapping[str, Collection[str] | None]
"""scheme -> the option names it reads; None: the scheme's loader checks its options itself (`check_options`)."""


@dataclass(frozen=True)
class Spec:
    """A parsed spec: `scheme`, `target` (name or path) and query `options`."""

    scheme: str
    target: str
    options: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.options.items())
        return f"{self.scheme}:{self.target}" + (f"?{query}" if query else "")


def parse_spec(text: str, kind: str, schemes: Schemes) -> Spec:
    """Split `text` into scheme, target and options; `kind` ('model'/'data') appears in errors.

    Options the scheme does not declare in `schemes`, and options given twice, are refused.
    """
    body, _, query = text.partition("?")
    scheme, sep, target = body.partition(":")
    if not sep or scheme not in schemes or not target:
        known = ", ".join(sorted(f"{s}:..." for s in schemes))
        raise SpecError(f"unknown {kind} spec {text!r}: use one of {known}")
    pairs = parse_qsl(query, keep_blank_values=True)
    keys = [k for k, _ in pairs]
    twice = next((k for k in keys if keys.count(k) > 1), None)
    if twice is not None:
        raise SpecError(f"{kind} spec {text!r} gives ?{twice}= more than once; keep one")
    options = dict(pairs)
    declared = schemes[scheme]
    if declared is not None:
        check_options(options, declared, f"{scheme}: specs")
    return Spec(scheme, target, options)


def check_options(given: Iterable[str], declared: Collection[str], where: str) -> None:
    """Refuse any option in `given` that is not in `declared`, naming the closest declared one (`where`: whose)."""
    for name in given:
        if name in declared:
            continue
        close = difflib.get_close_matches(name, list(declared), n=1)
        hint = f"; did you mean ?{close[0]}=?" if close else ""
        takes = f"it takes {', '.join(f'?{d}=' for d in sorted(declared))}" if declared else "it takes no options"
        raise SpecError(f"unknown option ?{name}= for {where}{hint} ({takes})")

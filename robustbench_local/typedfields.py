"""Checking a dataclass's fields against their type hints, so a setting of the wrong kind fails in one line.

Understood hints: bool, int, float, str, `X | None`, `list[X]`, `dict[str, X]` and Any. A field's metadata may
add `minimum` (for an int: its least value; for a list: its least length) and `example` (shown in the error).
"""
from __future__ import annotations

import types
import typing
from dataclasses import fields
from typing import Any

from .errors import SpecError

KINDS = {bool: "true or false (unquoted)", int: "an integer", float: "a number", str: "text"}


def check_fields(obj: Any) -> None:
    """Raise SpecError naming the first field of dataclass `obj` whose value does not fit its hint."""
    hints = typing.get_type_hints(type(obj))
    for f in fields(obj):
        value, hint, minimum = getattr(obj, f.name), hints[f.name], f.metadata.get("minimum")
        if fits(value, hint) and (minimum is None or value is None or _size(value) >= minimum):
            continue
        example = f" (e.g. {f.metadata['example']})" if "example" in f.metadata else ""
        raise SpecError(f"{f.name} must be {describe(hint, minimum)}{example}, got {_shown(value)}")


def fits(value: Any, hint: Any) -> bool:
    """Whether `value` is of type `hint` (bool is no int; an int is a float)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, arg) for arg in args)
    if hint is type(None):
        return value is None
    if origin is list:
        return isinstance(value, list) and all(fits(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(fits(k, args[0]) and fits(v, args[1]) for k, v in value.items())
    if hint in (int, float) and isinstance(value, bool):
        return False
    return isinstance(value, (int, float) if hint is float else hint)


def describe(hint: Any, minimum: int | None = None) -> str:
    """A reader's name for `hint`: 'an integer >= 1', 'a non-empty list of text', 'text or null', ..."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(arg, minimum) for arg in args)
    if hint is type(None):
        return "null"
    if origin is list:
        items = describe(args[0]).removeprefix("an ").removeprefix("a ")
        return f"a non-empty list of {items}" if minimum == 1 else f"a list of {items}" + (
            f" with at least {minimum} items" if minimum else "")
    if origin is dict:
        return f"a mapping with {describe(args[0]).removeprefix('an ').removeprefix('a ')} keys"
    return KINDS.get(hint, getattr(hint, "__name__", str(hint))) + (f" >= {minimum}" if minimum is not None else "")


def _size(value: Any) -> float:
    return len(value) if isinstance(value, (list, dict)) else value


def _shown(value: Any) -> str:
    text = repr(value)
    return f"{text[:60]}..." if len(text) > 60 else text

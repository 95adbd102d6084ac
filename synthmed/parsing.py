"""Parsers for option values shared by the commands and the Python API: one for each shape
of value (`KEY=VALUE` pairs, comma lists), so every option of that shape reads the same."""

from __future__ import annotations

from typing import Any, Sequence

from synthmed.errors import UsageError


def parse_key_values(pairs: list[str] | None, option: str, example: str = "width=32") -> dict[str, Any]:
    """Repeated `KEY=VALUE` option values -> keyword arguments for a plugin factory.

    A value is JSON when it parses as JSON (3, 0.5, true, [16, 32]), else a string; dashes in
    keys become underscores. One shared parser for -g, -a, --classifier-arg and friends."""
    import json

    result: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key.isidentifier():
            raise UsageError(f"{option} {pair!r}: expected KEY=VALUE, for example {option.split('/')[0]} {example}")
        try:
            result[key] = json.loads(value)
        except ValueError:
            result[key] = value
    return result


def comma_list(values: str | Sequence[str] | None) -> list[str] | None:
    """Names given as `a,b`, repeated (`--classes a --classes b`) or both -> ['a', 'b'];
    None when nothing was given."""
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    return [part.strip() for value in values for part in value.split(",") if part.strip()] or None

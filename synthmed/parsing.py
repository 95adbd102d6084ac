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


def comma_list(values: str | Sequence[str] | None, *, option: str | None = None, distinct: bool = False
               ) -> list[str] | None:
    """Names given as `a,b`, repeated (`--classes a --classes b`) or both -> ['a', 'b'];
    None when nothing was given. Every list option goes through here.

    With `distinct`, a list that names nothing or names something twice is refused with a
    UsageError naming `option`."""
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    names = [part.strip() for value in values for part in value.split(",") if part.strip()]
    if distinct and (not names or len(set(names)) != len(names)):
        raise UsageError(f"{option} {','.join(values)!r}: expected distinct comma-separated names")
    return names or None


def number_list(values: str | Sequence[str] | None, option: str, *, example: str, kind: type = float
                ) -> list[Any] | None:
    """A comma list of numbers (`0.25,0.5`, or repeated) -> [0.25, 0.5] of `kind`; None when
    nothing was given; anything that is not a number is a UsageError naming `option`."""
    names = comma_list(values)
    if names is None:
        return None
    try:
        return [kind(name) for name in names]
    except ValueError:
        shown = values if isinstance(values, str) else ",".join(values)
        raise UsageError(f"{option} {shown!r}: expected comma-separated numbers, for example {example}") from None


TRUE_WORDS = ("1", "true", "yes", "on")


def env_flag(name: str) -> bool:
    """An on/off environment variable (SYNTHMED_ALLOW_UPLOAD): unset or empty is off; 1, true,
    yes or on, in any case, is on; anything else is refused with a one-line UsageError, so a
    typo never silently means "no" (or "yes")."""
    import os

    value = os.environ.get(name, "").strip()
    if not value:
        return False
    if value.lower() in TRUE_WORDS:
        return True
    raise UsageError(f"{name}={value!r}: set it to one of {', '.join(TRUE_WORDS)} to turn it on, or unset it")

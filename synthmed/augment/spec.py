"""The policy spec language: `hflip(p=0.5)+rotate(degrees=10)`.

A spec is one or more components joined by `+`; a component is a registered policy name,
optionally followed by `(KEY=VALUE, ...)`. Values are numbers, `true`/`false`, or words
(quoted or bare). Pure Python, so parsing an option costs nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from synthmed.errors import UsageError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


@dataclass(frozen=True)
class Component:
    name: str
    params: tuple[tuple[str, Any], ...]  # in the order written

    def text(self) -> str:
        """Canonical text: parameters sorted by name, numbers written the shortest way."""
        if not self.params:
            return self.name
        inside = ",".join(f"{key}={format_value(value)}" for key, value in sorted(self.params))
        return f"{self.name}({inside})"


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return repr(value)
    return str(value)


def parse_value(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if _NUMBER.fullmatch(text):
        number = float(text)
        return int(number) if re.fullmatch(r"[+-]?\d+", text) else number
    return text


def parse_spec(spec: str) -> list[Component]:
    """`name(k=v,...)+name...` -> components; malformed text is a UsageError saying what is expected."""

    def fail(why: str) -> UsageError:
        return UsageError(
            f"augmentation policy {spec!r}: {why}; expected NAME or NAME(KEY=VALUE, ...) joined by '+', "
            "for example 'hflip(p=0.5)+rotate(degrees=10)'"
        )

    text = (spec or "").strip()
    if not text:
        raise fail("empty")
    components: list[Component] = []
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        match = _NAME.match(text, position)
        if not match:
            raise fail(f"a policy name is missing at character {position + 1}")
        name = match.group(0)
        position = match.end()
        params: list[tuple[str, Any]] = []
        while position < len(text) and text[position].isspace():
            position += 1
        if position < len(text) and text[position] == "(":
            close = text.find(")", position)
            if close < 0:
                raise fail(f"'(' after {name!r} is never closed")
            inside = text[position + 1 : close].strip()
            if inside:
                for item in inside.split(","):
                    key, equals, value = item.partition("=")
                    key = key.strip()
                    if not equals or not _KEY.fullmatch(key) or not value.strip():
                        raise fail(f"parameter {item.strip()!r} of {name!r} is not KEY=VALUE")
                    if key in dict(params):
                        raise fail(f"parameter {key!r} of {name!r} is given twice")
                    params.append((key, parse_value(value)))
            position = close + 1
        components.append(Component(name, tuple(params)))
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            return components
        if text[position] != "+":
            raise fail(f"unexpected {text[position]!r} at character {position + 1}")
        position += 1


def normalise_spec(spec: str) -> str:
    """The canonical text of a spec (`generator` column values use it)."""
    return "+".join(component.text() for component in parse_spec(spec))

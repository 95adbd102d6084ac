"""Augmentation policy specs: `hflip(p=0.5)+rotate(degrees=10)`, and joining the parts.

A spec is one or more components joined by `+`; a component is a registered policy name,
optionally followed by `(KEY=VALUE, ...)`. Values are numbers, `true`/`false`, or words
(quoted or bare). Pure Python, so parsing an option costs nothing. This is shared ground:
`synthmed.registry.create_policy` builds a spec's policy from the registered factories, for
`augment` and for `train --augment` alike.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from functools import reduce
from operator import add
from typing import Any, Callable, Sequence

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


def check_parameters(component: Component, factory: Callable[..., Any]) -> dict[str, Any]:
    """The component's parameters for `factory(**params)`; one it does not take is a UsageError
    listing those it does. An int given for a float parameter becomes a float (10 means 10.0)."""
    signature = inspect.signature(factory)
    accepts_any = any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())
    params = dict(component.params)
    for key, value in params.items():
        parameter = signature.parameters.get(key)
        if parameter is None or parameter.kind not in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
            if accepts_any:
                continue
            raise UsageError(
                f"augmentation policy {component.name!r} has no parameter {key!r}; {_parameters_text(factory)}"
            )
        if isinstance(parameter.default, float) and isinstance(value, int) and not isinstance(value, bool):
            params[key] = float(value)
    return params


def _parameters_text(factory: Callable[..., Any]) -> str:
    params = [
        f"{p.name}={p.default}" if p.default is not inspect.Parameter.empty else p.name
        for p in inspect.signature(factory).parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    return "its parameters are " + ", ".join(params) if params else "it takes no parameters"


class Sequential:
    """Policies run one after another (the parts of a spec that cannot be joined into one)."""

    def __init__(self, parts: Sequence[Callable[[Any], Any]]) -> None:
        self.parts = list(parts)

    def __call__(self, images: Any) -> Any:
        for part in self.parts:
            images = part(images)
        return images


def compose(parts: Sequence[Callable[..., Any]]) -> Callable[..., Any]:
    """One policy from a spec's parts: `a + b + ...` when they are all of one type that joins
    (synthmed.protocols.ComposablePolicy; the built-ins then share one warp), else in sequence."""
    from synthmed.protocols import ComposablePolicy

    if len(parts) == 1:
        return parts[0]
    if all(type(part) is type(parts[0]) and isinstance(part, ComposablePolicy) for part in parts):
        return reduce(add, parts)
    return Sequential(parts)

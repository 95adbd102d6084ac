"""Values of a study file: the canonical axis values (strings `synthmed mix` parses, so equal
settings compare equal) and the type checks every key goes through."""

from __future__ import annotations

from typing import Any, TYPE_CHECKING

if TYPE_CHECKING:
    from synthmed.study.schema import Located, Path_


def _number_text(value: float) -> str:
    return repr(float(value))  # always with a dot: a fraction, never read as a count


def canonical_real(loc: Located, value: Any, path: Path_) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}={_number_text(number_of(loc, v, (*path, k)))}" for k, v in value.items())
    if isinstance(value, str):
        return value.replace(" ", "")
    number = number_of(loc, value, path)
    if not 0 <= number <= 1:
        raise loc.error(path, f"{value} must be a fraction between 0 and 1")
    return _number_text(number)


def canonical_synthetic(loc: Located, value: Any, path: Path_) -> str | None:
    """None (no synthetic images), "balance", or a `mix --synthetic` spec (float: fraction, int: count)."""
    if isinstance(value, dict):
        return ",".join(f"{k}={_amount_text(loc, v, (*path, k))}" for k, v in value.items()) or None
    if isinstance(value, str):
        return value.replace(" ", "") or None
    text = _amount_text(loc, value, path)
    return None if float(text) == 0 else text


def _amount_text(loc: Located, value: Any, path: Path_) -> str:
    number = number_of(loc, value, path)
    if number < 0:
        raise loc.error(path, f"{value} is negative")
    return str(value) if isinstance(value, int) else _number_text(number)


def canonical_classes(loc: Located, value: Any, path: Path_) -> tuple[str, ...] | None:
    if value == "all":
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise loc.error(path, f'{value!r}: expected "all" or a list of classes, e.g. [["MildDemented", "ModerateDemented"]]')
    return tuple(value)


def table_of(loc: Located, value: Any, path: Path_) -> dict:
    if not isinstance(value, dict):
        raise loc.error(path, f"expected a table, got {type(value).__name__} {value!r}")
    return value


def check_keys(loc: Located, table: dict, allowed: Any, path: Path_) -> None:
    for key in table:
        if key not in allowed:
            raise loc.error((*path, key), f"unknown key; expected one of {', '.join(allowed)}")


def as_list(value: Any, path: Path_) -> list:
    return value if isinstance(value, list) else [value]


def names_of(loc: Located, value: Any, path: Path_) -> list[str]:
    return [string_of(loc, v, (*path, i)) for i, v in enumerate(as_list(value, path))]


def string_of(loc: Located, value: Any, path: Path_) -> str:
    if not isinstance(value, str) or not value:
        raise loc.error(path, f"expected a non-empty string, got {value!r}")
    return value


def int_of(loc: Located, value: Any, path: Path_, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise loc.error(path, f"expected a whole number, got {value!r}")
    if minimum is not None and value < minimum:
        raise loc.error(path, f"{value} must be at least {minimum}")
    return value


def number_of(loc: Located, value: Any, path: Path_) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise loc.error(path, f"expected a number, got {value!r}")
    return float(value)

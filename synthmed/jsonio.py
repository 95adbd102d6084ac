"""The JSON files the tool writes and reads back (dataset.json, config.json, metrics.json,
quality.json, streams.json, summaries): one way to write them, and one way to read them whose
every problem is a one-line error naming the file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from synthmed.errors import UsageError


def write_json(path: str | os.PathLike[str], record: Any) -> None:
    """`record` as indented JSON with a final newline, whole or not at all: written to
    `NAME.tmp` beside it, then renamed, so a process killed mid-write leaves no half file."""
    path = Path(path)
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(scratch, path)


def read_json(
    path: str | os.PathLike[str],
    *,
    what: str,
    error: type[UsageError] = UsageError,
    where: str | None = None,
    hint: str = "",
    format_version: int | None = None,
) -> dict[str, Any]:
    """The JSON object stored in `path`, or `error` (UsageError, or DatasetError for dataset
    files) with one line naming the file.

    `what` is what the file makes of its folder, with its article ("a model folder"): a missing
    file reads `<where>: not a model folder (no config.json)`, `where` being the folder unless
    given (an option and its value, say), followed by `; <hint>` when given. With
    `format_version`, the file's "format_version" must be that number."""
    path = Path(path)
    if not path.is_file():
        place = where if where is not None else str(path.parent)
        raise error(f"{place}: not {what} (no {path.name})" + (f"; {hint}" if hint else ""))
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(record, dict):
        raise error(f"{path}: expected a JSON object, found {type(record).__name__}")
    if format_version is not None and record.get("format_version") != format_version:
        raise error(f"{path}: format_version {record.get('format_version')!r} is not supported "
                    f"(expected {format_version})")
    return record

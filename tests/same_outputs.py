"""Comparing two outputs of one command, file by file, except what records time or the command
line (provenance's clock and argv, timing columns and keys): what "same seed, same bytes" means in the tests."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any


def _timed(key: str) -> bool:
    """A column or key that measures time (`seconds`, `fit_s`, `encode_s`, `time`, `..._per_s`)."""
    return "seconds" in key or key.endswith("_s") or key == "time"


def _untimed(value: Any) -> Any:
    if isinstance(value, dict):  # argv names -o OUT and --resume
        return {k: _untimed(v) for k, v in value.items() if not _timed(k) and k != "argv"}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


def comparable(path: Path) -> Any:
    data = path.read_bytes()
    if path.suffix == ".json" and path.name != "options.json":
        return _untimed(json.loads(data))
    if path.suffix == ".csv":
        return [{k: v for k, v in row.items() if not _timed(k)} for row in csv.DictReader(io.StringIO(data.decode()))]
    return data


def assert_same_outputs(a: Path, b: Path) -> list[Path]:
    """Every file of `a` is in `b` and the same (time aside), and no other; returns the files."""
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    others = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files and files == others, (sorted(set(files) - set(others)), sorted(set(others) - set(files)))
    for name in files:
        assert comparable(a / name) == comparable(b / name), name
    return files

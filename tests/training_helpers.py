"""Helpers for the train/evaluate tests: derived copies of the sample dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from synthmed.data import Dataset, DatasetWriter, Row


def derive_dataset(source: Path, out: Path, change: Callable[[Row], Optional[Row]],
                   classes: Optional[list[str]] = None) -> Path:
    """A copy of `source` with each row passed through `change` (None drops the row)."""
    data = Dataset.open(source)
    with DatasetWriter(out, classes=classes or data.classes, command="test") as writer:
        for row in data.rows:
            new = change(dict(row))
            if new is not None:
                writer.add_file(data.path_of(row), row, **{k: v for k, v in new.items() if k != "file_name"})
    return out


def no_outputs(path: Path) -> bool:
    """Neither the output nor its temporary sibling exists."""
    return not path.exists() and not (path.parent / f".{path.name}.partial").exists()

"""The dataset contract itself (docs/dataset.md): columns, splits, sources, and the checks
that a dataset.json and the rows of a metadata.csv keep it."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any, Sequence

from synthmed.errors import DatasetError

FORMAT_VERSION = 1
COLUMNS = ("file_name", "id", "label", "split", "source", "origin", "subject", "generator", "seed", "sha256")
SPLITS = ("train", "val", "test")
SOURCES = ("real", "synthetic", "augmented")
HELD_OUT_SPLITS = ("val", "test")

Row = dict[str, str]


def origins_of(row: Row) -> list[str]:
    """The ids a row was made from (`origin` is `;`-separated)."""
    return [part for part in row.get("origin", "").split(";") if part]


def check_info(info: dict[str, Any], info_path: Path) -> None:
    """dataset.json's fields (read with its format version checked: synthmed.jsonio.read_json)."""
    classes = info.get("classes")
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) and c for c in classes):
        raise DatasetError(f"{info_path}: 'classes' must be a non-empty list of class names")
    if len(set(classes)) != len(classes):
        raise DatasetError(f"{info_path}: 'classes' lists a class twice")
    if info.get("channels") not in (1, 3):
        raise DatasetError(f"{info_path}: 'channels' must be 1 or 3")


def check_rows(root: Path, classes: Sequence[str], rows: Sequence[Row]) -> None:
    """Every row's id, label, split, source and file_name, in order; the first problem is a one-line DatasetError."""
    meta_path = root / "metadata.csv"
    known = set(classes)
    seen: dict[str, int] = {}
    real_root = root.resolve()
    for line, row in enumerate(rows, start=2):
        where = f"{meta_path} line {line} (id {row.get('id', '')!r})"
        row_id = row["id"]
        if not row_id:
            raise DatasetError(f"{where}: empty id")
        if row_id in seen:
            raise DatasetError(f"{where}: duplicate id, first used on line {seen[row_id]}")
        seen[row_id] = line
        if row["label"] not in known:
            raise DatasetError(f"{where}: unknown label {row['label']!r}; dataset.json classes are {list(classes)}")
        if row["split"] not in SPLITS:
            raise DatasetError(f"{where}: split {row['split']!r} is not one of {', '.join(SPLITS)}")
        if row["source"] not in SOURCES:
            raise DatasetError(f"{where}: source {row['source']!r} is not one of {', '.join(SOURCES)}")
        name = row["file_name"]
        posix = PurePosixPath(name)
        if not name or posix.is_absolute() or "\\" in name or ":" in posix.parts[0] or ".." in posix.parts:
            raise DatasetError(f"{where}: file_name {name!r} must be a relative POSIX path inside the dataset")
        if posix.parts[:2] != (row["split"], row["label"]) or len(posix.parts) != 3:
            raise DatasetError(
                f"{where}: file_name {name!r} must be {row['split']}/{row['label']}/<file> to match its split and label"
            )
        path = root / name
        if not path.resolve().is_relative_to(real_root):
            raise DatasetError(f"{where}: file_name {name!r} resolves outside the dataset (symbolic link?)")
        if not path.is_file():
            raise DatasetError(f"{where}: file {name!r} is missing")

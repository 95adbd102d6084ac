"""Helpers for the study tests: study files around a dataset, and reading their outputs."""

from __future__ import annotations

import csv
from pathlib import Path

# One epoch on 32 px images: each repeat takes about a second.
TINY_TRAIN = """
[train]
epochs = 1
batch_size = 32
"""


def write_study(folder: Path, dataset: Path, body: str, *, name: str = "study.toml", header: str = "") -> Path:
    """A study file on `dataset`; `body` follows the dataset line."""
    path = folder / name
    path.write_text(f'{header}dataset = "{dataset}"\n{body}', encoding="utf-8")
    return path


def read_results(out: Path) -> list[dict[str, str]]:
    with open(out / "results.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def one_error_line(result) -> str:
    """The single `synthmed: error:` line of a refused command (exit 2)."""
    assert result.code == 2, result.err
    lines = [line for line in result.err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("synthmed: error: "), result.err
    return lines[0]

"""The resume journal of a dataset being written: one JSON record per finished row, appended
to `rows.jsonl` inside the output's hidden `.OUT.partial/` folder, and the one reader of it
(for `DatasetWriter` on `--resume`, and for `--dry-run --resume`, which reads without writing)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from synthmed.data.output import partial_path

JOURNAL = "rows.jsonl"


def read_journal(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of a journal file in order, up to the first line a crash cut short (its
    image is redone); [] when there is no journal."""
    path = Path(path)
    records: list[dict[str, Any]] = []
    if not path.is_file():
        return records
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except ValueError:
                break
            if not isinstance(record, dict) or "id" not in record:
                break
            records.append(record)
    return records


def written_ids(out: str | os.PathLike[str]) -> set[str]:
    """Ids that `--resume` on `out` would not write again: those in the journal of its
    unfinished run, or, with none, those of a finished `out` (which `--resume` continues)."""
    out = Path(out)
    journal = partial_path(out) / JOURNAL
    if not journal.is_file() and (out / "dataset.json").is_file():
        from synthmed.data.reading import Dataset

        return {row["id"] for row in Dataset.open(out).rows}
    return {record["id"] for record in read_journal(journal)}

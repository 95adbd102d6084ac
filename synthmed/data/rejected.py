"""`rejected.csv`: what a command could not turn into an image, with the reason, one format
for every command (preprocess: unusable input files; generate: variations a generator refused).

Columns `id, source, reason`: `id` is the row id the item would have had (empty when it never
got one, as a file rejected before it is read into images), `source` what it was made from
(the input file, or the source row's id), `reason` one line. The file is rewritten whole on
each change (it is small), through a temporary file, so a crash never leaves it half-written;
it is removed when it would be empty."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Iterable

REJECTED_FILE = "rejected.csv"
REJECTED_COLUMNS = ("id", "source", "reason")


def rejection_reason(error: BaseException) -> str:
    """One line: the exception's type and the first line of its message."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class RejectedLog:
    """The `rejected.csv` of an output being written (in `folder`, its temporary folder); an
    earlier run's entries are read back on `--resume`."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / REJECTED_FILE
        self.entries: dict[str, dict[str, str]] = {}
        if self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as handle:
                for entry in csv.DictReader(handle):
                    record = {c: entry.get(c) or "" for c in REJECTED_COLUMNS}
                    self.entries[record["id"] or record["source"]] = record

    def add(self, row_id: str, source: str, reason: str) -> None:
        self.add_all([(row_id, source, reason)])

    def add_all(self, entries: Iterable[tuple[str, str, str]]) -> None:
        for row_id, source, reason in entries:
            self.entries[row_id or source] = {"id": row_id, "source": source, "reason": reason}
        self._save()

    def forget(self, ids: Iterable[str]) -> None:
        """Drop earlier rejections of items that are tried again or done now."""
        before = len(self.entries)
        for key in ids:
            self.entries.pop(key, None)
        if len(self.entries) != before:
            self._save()

    def _save(self) -> None:
        if not self.entries:
            self.path.unlink(missing_ok=True)
            return
        scratch = self.path.with_name(self.path.name + ".tmp")
        with open(scratch, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=REJECTED_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(self.entries.values())
        os.replace(scratch, self.path)

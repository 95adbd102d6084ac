"""The leakage rule: no train row may be made from a val/test image or share a subject with val/test."""

from __future__ import annotations

from typing import Iterable

from synthmed.data.schema import HELD_OUT_SPLITS, Row, origins_of
from synthmed.errors import DatasetError


def find_leaks(rows: Iterable[Row], reference_rows: Iterable[Row] = ()) -> list[str]:
    """Train rows derived from a val/test image or sharing a subject with val/test.

    `reference_rows` are rows of parent datasets (for origins that point outside `rows`).
    """
    rows = list(rows)
    everything = rows + list(reference_rows)
    held_out_ids = {r["id"]: r["split"] for r in everything if r["split"] in HELD_OUT_SPLITS}
    held_out_subjects = {r["subject"]: r["split"] for r in everything if r["split"] in HELD_OUT_SPLITS and r["subject"]}
    problems = []
    for row in rows:
        if row["split"] != "train":
            continue
        for origin in origins_of(row):
            if origin in held_out_ids:
                problems.append(f"train row {row['id']!r} was made from {held_out_ids[origin]} image {origin!r}")
        subject = row.get("subject", "")
        if subject and subject in held_out_subjects:
            problems.append(f"train row {row['id']!r} shares subject {subject!r} with the {held_out_subjects[subject]} split")
    return problems


def check_leakage(rows: Iterable[Row], reference_rows: Iterable[Row] = (), *, where: str = "") -> None:
    """Raise DatasetError naming the first leak (and how many there are)."""
    problems = find_leaks(rows, reference_rows)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        prefix = f"{where}: " if where else ""
        raise DatasetError(f"{prefix}leakage: {problems[0]}{more}; such rows must not enter a train split")

"""`synthmed info DATASET`: validate a dataset folder and count its images."""

from __future__ import annotations

import json as jsonlib
import sys

from typing import Annotated

import typer

from synthmed.cli.options import DatasetArg, Json


def info(
    dataset: DatasetArg,
    deep: Annotated[bool, typer.Option("--deep", help="Also check every file's sha256 and decode every image.")] = False,
    json: Json = False,
) -> None:
    """Validate a dataset (exit 2 with the first problem) and print image counts per split, class and source.

    Checks every image the way the other commands do before reading it (size, channels, bit
    depth, truncated or damaged files) and the leakage rule; --deep also hashes and decodes."""
    from rich.console import Console
    from rich.table import Table

    from synthmed.data import SOURCES, SPLITS, Dataset

    data = Dataset.open(dataset)
    data.verify(deep=deep)
    counts = data.counts()
    if json:
        nested = {
            split: {label: {source: counts[(split, label, source)] for source in SOURCES} for label in data.classes}
            for split in SPLITS
        }
        record = {
            "path": str(dataset),
            "classes": data.classes,
            "image_size": data.image_size,
            "channels": data.channels,
            "bit_depth": data.bit_depth,
            "images": len(data.rows),
            "counts": nested,
        }
        sys.stdout.write(jsonlib.dumps(record, indent=2) + "\n")
        return
    size = "x".join(map(str, data.image_size)) if data.image_size else "mixed"
    table = Table(title=f"{dataset}  ({size} px, {data.channels} channel(s), {data.bit_depth}-bit)")
    table.add_column("split")
    table.add_column("class")
    for source in SOURCES:
        table.add_column(source, justify="right")
    table.add_column("total", justify="right")
    for split in SPLITS:
        for label in data.classes:
            values = [counts[(split, label, source)] for source in SOURCES]
            if sum(values):
                table.add_row(split, label, *map(str, values), str(sum(values)))
        table.add_section()
    totals = [sum(n for (_, _, s), n in counts.items() if s == source) for source in SOURCES]
    table.add_row("all", "", *map(str, totals), str(len(data.rows)))
    # The table is this command's result, so it goes to stdout.
    Console(file=sys.stdout).print(table)

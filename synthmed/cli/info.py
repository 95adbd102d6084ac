"""`synthmed info DATASET`: validate a dataset folder and count its images."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from synthmed.cli.options import DatasetArg, Json

GRID_IMAGES = 8  # images per row of --grid


def info(
    dataset: DatasetArg,
    deep: Annotated[bool, typer.Option("--deep", help="Also check every file's sha256 and decode every image.")] = False,
    grid: Annotated[Optional[Path], typer.Option(
        "--grid", help="Also write a PNG: a row of sample images per class (and source).")] = None,
    json: Json = False,
) -> None:
    """Validate a dataset (exit 2 with the first problem) and print image counts per split, class and source.

    Checks every image the way the other commands do before reading it (size, channels, bit
    depth, truncated or damaged files) and the leakage rule; --deep also hashes and decodes.
    Also says whether the splits are grouped by subject (no patient in two splits) or made
    image by image."""
    from synthmed.cli.output import emit
    from synthmed.data import SOURCES, SPLITS, Dataset
    from synthmed.preprocess.subjects import subject_grouping

    data = Dataset.open(dataset)
    data.verify(deep=deep)
    counts = data.counts()
    real = [row for row in data.rows if row["source"] == "real"]
    grouping = subject_grouping([r["file_name"] for r in real], [r["subject"] for r in real],
                                [r["split"] for r in real], kept=False, suggest=False)
    recorded = data.info.get("subject_grouping") or {}
    if recorded.get("warning") and not grouping["grouped_by_subject"]:
        grouping["warning"] = recorded["warning"]  # the one preprocess gave, with its suggestion
    if grid is not None:
        write_grid(data, grid)
    if json:
        nested = {
            split: {label: {source: counts[(split, label, source)] for source in SOURCES} for label in data.classes}
            for split in SPLITS
        }
        emit(Path(dataset), {
            "classes": data.classes, "image_size": data.image_size, "channels": data.channels,
            "bit_depth": data.bit_depth, "images": len(data.rows), "counts": nested, "subject_grouping": grouping,
            "grid": str(grid) if grid else None,
        }, as_json=True)
        return
    from rich.console import Console

    console = Console(file=sys.stdout)  # the table is this command's result
    console.print(counts_table(data, counts, SOURCES, SPLITS, str(dataset)))
    console.print(f"splits: {_grouping_line(grouping)}", overflow="fold")


def _grouping_line(grouping: dict[str, Any]) -> str:
    if grouping["grouped_by_subject"]:
        return f"grouped by subject ({grouping['subjects']} subjects; no subject in two splits)"
    return grouping["warning"] or (f"{grouping['images_without_subject']} real images without a subject id "
                                   "(one split, nothing to leak across)")


def counts_table(data: Any, counts: Any, sources: Any, splits: Any, title: str) -> Any:
    """Counts per split, class and source; class names wrap rather than being cut."""
    from rich.markup import escape
    from rich.table import Table

    size = "x".join(map(str, data.image_size)) if data.image_size else "mixed"
    table = Table(title=escape(f"{title}  ({size} px, {data.channels} channel(s), {data.bit_depth}-bit)"))
    table.add_column("split")
    table.add_column("class", overflow="fold")
    for source in sources:
        table.add_column(source, justify="right")
    table.add_column("total", justify="right")
    for split in splits:
        for label in data.classes:
            values = [counts[(split, label, source)] for source in sources]
            if sum(values):
                table.add_row(split, escape(label), *map(str, values), str(sum(values)))
        table.add_section()
    totals = [sum(n for (_, _, s), n in counts.items() if s == source) for source in sources]
    table.add_row("all", "", *map(str, totals), str(len(data.rows)))
    return table


def write_grid(data: Any, path: Path) -> Path:
    """One row per class and source present: up to GRID_IMAGES images, train split first,
    the same ones every time (evenly spaced through the rows)."""
    from synthmed import figures
    from synthmed.data import SOURCES
    from synthmed.data.imageio import decode_png, to_chw

    rows, labels = [], []
    for label in data.classes:
        for source in SOURCES:
            pool = sorted(data.select(None, source, [label]), key=lambda r: (r["split"] != "train", r["id"]))
            if not pool:
                continue
            step = max(1, len(pool) // GRID_IMAGES)
            chosen = pool[::step][:GRID_IMAGES]
            rows.append([to_chw(decode_png(data.path_of(row))) for row in chosen])  # sizes may be mixed
            labels.append(f"{label}\n{source} ({len(pool)})")
    fig = figures.image_grid(rows, row_labels=labels, title=f"{data.root.name}: samples per class")
    return figures.save(fig, path)

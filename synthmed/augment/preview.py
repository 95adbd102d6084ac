"""The preview of an augmentation: real images next to the augmented copies made of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

PREVIEW_IMAGES = 3  # originals shown per class
PREVIEW_COPIES = 5  # copies shown per original


def write_preview(source: Any, augmented: Any, path: Path, policy: str) -> Path:
    """A PNG grid: per class, up to PREVIEW_IMAGES originals from `source` (Dataset), each
    followed by up to PREVIEW_COPIES of its augmented copies from `augmented` (Dataset)."""
    from synthmed import figures
    from synthmed.data import origins_of
    from synthmed.data.imageio import decode_png, to_chw

    by_origin: dict[str, list[Any]] = {}
    for row in sorted(augmented.select(source="augmented"), key=lambda r: r["id"]):
        for origin in origins_of(row):
            by_origin.setdefault(origin, []).append(row)
    originals = {row["id"]: row for row in source.rows}
    rows, labels, titles = [], [], []
    for label in augmented.classes:
        chosen = [i for i in sorted(by_origin) if i in originals and originals[i]["label"] == label][:PREVIEW_IMAGES]
        for origin in chosen:
            copies = by_origin[origin][:PREVIEW_COPIES]
            rows.append([to_chw(decode_png(source.path_of(originals[origin])))]
                        + [to_chw(decode_png(augmented.path_of(c))) for c in copies])
            labels.append(label)
            titles.append(["original", *(f"copy {k + 1}" for k in range(len(copies)))])
    if not rows:
        from synthmed.errors import UsageError

        raise UsageError(f"{augmented.root}: no augmented images to preview")
    fig = figures.image_grid(rows, row_labels=labels, titles=titles, title=f"augmentation: {policy}" if policy else "augmentation")
    return figures.save(fig, path)

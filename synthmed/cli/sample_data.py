"""`synthmed sample-data`: write the embedded phantom dataset."""

from __future__ import annotations

from typing import Annotated

import typer

from synthmed.cli.options import Json, Output, Overwrite, Quiet, Seed
from synthmed.cli.output import emit, progress


def sample_data(
    output: Output,
    size: Annotated[int, typer.Option("--size", help="Image side in pixels (16 to 512).")] = 64,
    scale: Annotated[float, typer.Option("--scale", help="Multiply the thesis class counts (2566/1781/724/49) by this.")] = 1.0,
    seed: Seed = 0,
    overwrite: Overwrite = False,
    json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Write a deterministic sample dataset of brain-MRI-like phantoms in four severity classes."""
    from synthmed.data import Dataset
    from synthmed.data.sample import write_sample_dataset

    with progress(quiet=quiet) as display:
        path = write_sample_dataset(output, size=size, scale=scale, seed=seed, overwrite=overwrite, progress=display)
    summary = None
    if json:
        dataset = Dataset.open(path)
        summary = {"images": len(dataset.rows), "classes": dataset.classes, "image_size": dataset.image_size}
    emit(path, summary, as_json=json)

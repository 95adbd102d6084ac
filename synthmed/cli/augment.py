"""`synthmed augment DATASET -o OUT --policy P`: augmented copies of dataset images as new rows."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from synthmed.cli.options import (
    Balance,
    BatchSize,
    Classes,
    DatasetArg,
    Device,
    Json,
    Output,
    Overwrite,
    Quiet,
    Resume,
    Seed,
    Shard,
    Splits,
)
from synthmed.parsing import comma_list
from synthmed.cli.output import emit, progress


def augment(
    dataset: DatasetArg,
    output: Output,
    policy: Annotated[
        str,
        typer.Option("--policy", "-p", help="Policy spec, e.g. 'hflip(p=0.5)+rotate(degrees=10)' or 'medical' (docs/augment.md)."),
    ],
    copies: Annotated[Optional[int], typer.Option("--copies", "-k", help="Augmented copies of each selected image (default 1).")] = None,
    classes: Classes = None,
    splits: Splits = ["train"],  # noqa: B006 - typer
    only_augmented: Annotated[bool, typer.Option("--only-augmented", help="Write only the augmented images, not the originals.")] = False,
    balance: Balance = False,
    batch_size: BatchSize = 64,
    seed: Seed = 0,
    device: Device = "auto",
    shard: Shard = None,
    overwrite: Overwrite = False,
    resume: Resume = False,
    preview: Annotated[Optional[Path], typer.Option(
        "--preview", help="Also write a PNG: a few originals per class next to their augmented copies.")] = None,
    json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Write K augmented copies of each selected image (source=augmented, origin, generator=policy@version, seed)."""
    from synthmed.data import Dataset
    from synthmed.devices import parse_shard, resolve_device
    from synthmed.augment.job import augment_dataset

    shard_index = parse_shard(shard)
    torch_device = resolve_device(device)
    data = Dataset.open(dataset)
    with progress(quiet=quiet) as display:
        summary = augment_dataset(
            data,
            output,
            policy_spec=policy,
            copies=copies,
            balance=balance,
            splits=comma_list(splits) or ["train"],
            classes=comma_list(classes),
            only_augmented=only_augmented,
            seed=seed,
            device=torch_device,
            batch_size=batch_size,
            shard=shard_index,
            overwrite=overwrite,
            resume=resume,
            progress=display,
        )
    if preview is not None:
        from synthmed.augment.preview import write_preview

        write_preview(data, Dataset.open(output), preview, policy)
        summary = {**summary, "preview": str(preview)}
    emit(output, summary, as_json=json)

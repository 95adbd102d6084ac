"""`synthmed gradcam RUN DATASET -o OUT`: what a classifier looks at, as pictures and numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from synthmed.cli.options import (
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
    Splits,
    old_spelling,
    renamed,
)
from synthmed.parsing import comma_list
from synthmed.cli.output import emit, progress, show


def gradcam(
    ctx: typer.Context,
    run: Annotated[Path, typer.Argument(help="Trained classifier: a model folder or a RUN of run-XX/ repeats (the first is used).", show_default=False)],
    dataset: DatasetArg,
    output: Output,
    target: Annotated[
        Optional[list[str]],
        typer.Option("--target", "-t", help="Class the map explains: predicted, true or a class name; repeat or comma-separate for several."),
    ] = None,
    method: Annotated[str, typer.Option("--method", help="gradcam, gradcam++, hirescam, xgradcam or layercam.")] = "gradcam",
    layer: Annotated[Optional[str], typer.Option("--layer", help="Module name to explain (default: the last convolutional block, or a ViT's last block).")] = None,
    splits: Splits = None,
    classes: Classes = None,
    source: Annotated[Optional[str], typer.Option("--source", help="Only real, synthetic or augmented images.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", help="At most N images per class (drawn with --seed); with --pairs, N synthetic images per class.")] = None,
    pairs: Annotated[bool, typer.Option("--pairs", help="Compare each synthetic image with the real image it was made from, against a real-real baseline.")] = False,
    figures: Annotated[bool, typer.Option("--figures/--no-figures", help="Write overlay and pair PNGs (maps and numbers are always written).")] = True,
    batch_size: BatchSize = 32,
    seed: Seed = 0,
    device: Device = "auto",
    overwrite: Overwrite = False,
    resume: Resume = False,
    json: Json = False,
    quiet: Quiet = False,
    old_split: Annotated[Optional[list[str]], old_spelling("--split", new="--splits")] = None,
) -> None:
    """Grad-CAM heat maps of a trained classifier on a dataset's images; with --pairs, how alike the maps of synthetic images and their real origins are."""
    from synthmed.gradcam.report import GradcamRequest, run_gradcam

    splits = renamed(ctx, splits, old_split, new="--splits", old="--split")
    request = GradcamRequest(
        run=run, dataset=dataset, out=output, targets=target or ["predicted"], method=method, layer=layer,
        splits=comma_list(splits), classes=comma_list(classes), source=source, limit=limit, pairs=pairs, figures=figures, seed=seed,
        device=device, batch_size=batch_size, overwrite=overwrite, resume=resume,
    )  # fmt: skip
    with progress(quiet=quiet) as display:  # the bar appears once the request is checked and the model loaded
        path, summary = run_gradcam(request, progress=display)
    if summary["pairs"]:
        show(_pairs_table(summary), quiet=quiet)
    emit(path, summary, as_json=json)


def _pairs_table(summary: dict):
    from rich.table import Table

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    table = Table(title=f"{summary['method']} at {summary['layer']['name']}: synthetic vs their real origins (baseline: unrelated real pairs)")
    for name in ("class", "target", "pairs (synthetic / baseline)", "r", "r baseline", "IoU top 20%", "IoU baseline"):
        # names are not wrapped (rich would cut them at 80 columns); numbers and headers wrap
        is_name = name in ("class", "target")
        table.add_column(name, no_wrap=is_name, justify="left" if is_name else "right")
    for label, per_target in summary["pairs"]["classes"].items():
        for target, stats in per_target.items():
            table.add_row(
                label, target, f"{stats['pairs']} / {stats['baseline_pairs']}",
                fmt(stats["pearson"]["median"]), fmt(stats["baseline"]["pearson"]["median"]),
                fmt(stats["iou_top20"]["median"]), fmt(stats["baseline"]["iou_top20"]["median"]),
            )  # fmt: skip
    return table

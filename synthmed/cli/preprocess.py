"""`synthmed preprocess INPUT... -o OUT`: raw image files (PNG/JPEG/TIFF/BMP, DICOM, NIfTI, MedMNIST .npz) -> dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from synthmed.cli.options import Classes, Json, Output, Overwrite, Quiet, Seed, Shard, ValFraction, old_spelling, renamed
from synthmed.cli.output import emit, progress, show, warn

Str = Optional[str]


def preprocess(
    ctx: typer.Context,
    inputs: Annotated[list[Path], typer.Argument(metavar="INPUT...", help="Image files or folders (class folders, optionally under train/val/test).", show_default=False)],
    output: Output,
    size: Annotated[Str, typer.Option("--size", help="Resize to N or HxW pixels.")] = None,
    fit: Annotated[str, typer.Option("--fit", help="pad: keep the aspect ratio and pad with black; stretch: ignore it.")] = "pad",
    mode: Annotated[str, typer.Option("--mode", help="Channels: L, RGB, or auto (RGB only if some image has colour).")] = "auto",
    bit_depth: Annotated[int, typer.Option("--bit-depth", help="8, or 16 (grey only) to keep the depth of DICOM/16-bit inputs.")] = 8,
    intensity: Annotated[str, typer.Option("--intensity", help="auto (reader window, 8-bit kept, else min-max), minmax, percentile or dtype.")] = "auto",
    percentiles: Annotated[str, typer.Option("--percentiles", help="LOW,HIGH for percentile windowing (also DICOM/NIfTI without a window).")] = "0.5,99.5",
    window: Annotated[Str, typer.Option("--window", help="CENTRE,WIDTH in modality units for DICOM/NIfTI (default: the file's own window, else percentiles).")] = None,
    crop: Annotated[bool, typer.Option("--crop/--no-crop", help="Crop to the largest bright connected region (retina, body).")] = False,
    crop_threshold: Annotated[Str, typer.Option("--crop-threshold", help="otsu, or a level in [0, 1].")] = "otsu",
    crop_margin: Annotated[float, typer.Option("--crop-margin", help="Margin around the crop, as a fraction of its size.")] = 0.02,
    opening: Annotated[int, typer.Option("--opening", help="Radius (px) of a morphological opening (removes bright specks); 0 = off.")] = 0,
    closing: Annotated[int, typer.Option("--closing", help="Radius (px) of a morphological closing (fills dark specks); 0 = off.")] = 0,
    axis: Annotated[int, typer.Option("--axis", help="NIfTI: slice along this axis (0, 1, 2) of the RAS volume.")] = 2,
    slices: Annotated[Str, typer.Option("--slices", help="NIfTI: slice range START:STOP.")] = None,
    min_foreground: Annotated[float, typer.Option("--min-foreground", help="NIfTI: drop slices with less foreground than this fraction.")] = 0.01,
    volume_index: Annotated[Optional[int], typer.Option("--volume-index", help="NIfTI: which volume of a 4-D file.")] = None,
    label_regex: Annotated[Str, typer.Option("--label-regex", help="Label = this regex's match (or group 'label') in the file name.")] = None,
    default_label: Annotated[Str, typer.Option("--default-label", help="Label for names the --label-regex does not match.")] = None,
    labels_csv: Annotated[Optional[Path], typer.Option("--labels-csv", help="CSV with columns file,label[,subject][,split].")] = None,
    subject_regex: Annotated[Str, typer.Option("--subject-regex", help="Subject = this regex's first group in the file name.")] = None,
    subjects_per_split: Annotated[
        bool, typer.Option("--subjects-per-split", help="Subject ids restart in each input split folder: prefix them with the split.")
    ] = False,
    classes: Classes = None,
    class_names: Annotated[Str, typer.Option("--class-names", help="Comma list naming the label indices of .npz files.")] = None,
    split_fractions: Annotated[Str, typer.Option("--split-fractions", help="TRAIN,VAL,TEST fractions: new splits, stratified and grouped by subject.")] = None,
    val_fraction: ValFraction = None,
    seed: Seed = 0,
    workers: Annotated[int, typer.Option("--workers", help="Processes reading files in parallel.")] = 1,
    shard: Shard = None,
    strict: Annotated[bool, typer.Option("--strict", help="Stop at the first unreadable file instead of listing it in rejected.csv.")] = False,
    overwrite: Overwrite = False,
    json: Json = False,
    quiet: Quiet = False,
    old_split: Annotated[Str, old_spelling("--split", new="--split-fractions")] = None,
) -> None:
    """Clean raw medical images into a dataset: read, crop, denoise, resize, label and split."""
    from synthmed.preprocess.plan import prepare_preprocess
    from synthmed.preprocess.job import run_preprocess
    from synthmed.preprocess.options import build_config

    split_fractions = renamed(ctx, split_fractions, old_split, new="--split-fractions TRAIN,VAL,TEST", old="--split",
                              old_meaning=lambda spec: spec not in ("train", "val", "test"))
    config = build_config(
        inputs=inputs, size=size, fit=fit, mode=mode, bit_depth=bit_depth, intensity=intensity,
        percentiles=percentiles, window=window, crop=crop, crop_threshold=crop_threshold,
        crop_margin=crop_margin, opening=opening, closing=closing, axis=axis, slices=slices,
        min_foreground=min_foreground, volume_index=volume_index, label_regex=label_regex,
        default_label=default_label, labels_csv=labels_csv, subject_regex=subject_regex,
        classes=classes, class_names=class_names, split_fractions=split_fractions, seed=seed, workers=workers,
        shard=shard, strict=strict, val_fraction=val_fraction, subjects_per_split=subjects_per_split,
    )
    job = prepare_preprocess(inputs, output, config, overwrite=overwrite)
    with progress(quiet=quiet) as display:
        summary = run_preprocess(job, progress=display)
    notes = []
    if summary["rejected"]:
        notes.append(f"{summary['rejected']} file(s) rejected: see {output / 'rejected.csv'}")
    if summary["duplicate_groups"]:
        notes.append(
            f"{summary['duplicate_groups']} group(s) of identical images ({summary['duplicates_dropped']} cross-split copies dropped): "
            f"see {output / 'duplicates.csv'}"
        )
    for note in notes:
        show(f"[yellow]{note}[/yellow]", quiet=quiet)
    for message in summary["warnings"]:
        warn(message)
    emit(output, summary, as_json=json)

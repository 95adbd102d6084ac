"""`synthmed compress`: encode a dataset into bitstream files with a learned or classical codec
and report rate and quality; `--decode` restores a dataset folder from such an output."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from synthmed.cli.options import Device, FitEpochs, Json, ModelDir, Output, Overwrite, Quiet, Resume, Seed, Splits
from synthmed.parsing import comma_list, number_list
from synthmed.cli.output import emit, progress, show
from synthmed.errors import UsageError


def compress(
    output: Output,
    dataset: Annotated[Optional[Path], typer.Argument(help="Dataset folder to compress.", show_default=False)] = None,
    codec: Annotated[
        Optional[list[str]],
        typer.Option("--codec", "-c", help="Codec NAME or NAME=Q1,Q2 (repeatable); see `synthmed plugins`. Default learned-hyperprior."),
    ] = None,
    quality: Annotated[
        Optional[list[str]],
        typer.Option("--quality", help="Quality level(s), e.g. 75 or 50,75 (repeatable); default: each codec's ladder."),
    ] = None,
    splits: Splits = ["train", "val", "test"],  # noqa: B006 - typer
    report_split: Annotated[str, typer.Option("--report-split", help="Split the report measures.")] = "test",
    decode: Annotated[
        Optional[Path], typer.Option("--decode", help="Decode this compress output back into a dataset folder (-o).")
    ] = None,
    fit_epochs: FitEpochs = None,
    fit_steps: Annotated[
        Optional[str],
        typer.Option("--fit-steps", help="TOP[,WARM]: fit learned codecs for optimiser steps instead of epochs: TOP for the highest quality (from scratch), WARM for each lower one (warm-started from the one above)."),
    ] = None,
    refine_steps: Annotated[
        Optional[int],
        typer.Option("--refine-steps", help="Per-image latent refinement steps when encoding with a learned codec (0: off; default 0). Slower encoding, same decoder and streams."),
    ] = None,
    distortion: Annotated[
        str,
        typer.Option("--distortion", help="mse or ms-ssim: what learned codecs are fitted (and --refine-steps refines) to lower, each with its own lambda ladder. A --model or --resume model must have been fitted for it."),
    ] = "mse",
    model: ModelDir = None,
    device: Device = "auto",
    seed: Seed = 0,
    overwrite: Overwrite = False,
    resume: Resume = False,
    json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Compress a dataset into one bitstream file per image, with report.json and a rate-distortion plot; --decode restores a dataset.

    Bits per pixel are counted from the real file sizes. --resume keeps the learned models
    fitted before an interruption (fitting is the long part) and encodes again."""
    qualities = _parse_qualities(quality or [])
    if (dataset is None) == (decode is None):
        raise UsageError("give either a DATASET to compress or --decode OUT to restore one, not both")
    if decode is not None and resume:
        raise UsageError("--resume continues compressing a dataset; --decode has nothing to resume (rerun it)")
    if decode is not None:
        _decode(decode, output, codec, qualities, overwrite=overwrite, json=json, quiet=quiet)
        return

    from synthmed.devices import resolve_device
    from synthmed.compress.job import compress_dataset

    chosen_device = resolve_device(device)
    split_list = comma_list(splits) or []
    with progress(quiet=quiet) as display:
        report = compress_dataset(
            dataset,
            output,
            codecs=codec or ["learned-hyperprior"],
            qualities=qualities or None,
            splits=split_list,
            report_split=report_split,
            fit_epochs=fit_epochs,
            fit_steps=number_list(fit_steps, "--fit-steps", example="4000,1600", kind=int),
            refine_steps=refine_steps,
            distortion=distortion,
            model_dir=model,
            device=chosen_device,
            seed=seed,
            overwrite=overwrite,
            resume=resume,
            progress=display,
        )
    show(_table(report), quiet=quiet)
    emit(output, report, as_json=json)


def _decode(streams: Path, output: Path, codec: Optional[list[str]], qualities: list[int], *, overwrite: bool,
            json: bool, quiet: bool) -> None:
    from synthmed.compress.decode import decode_streams
    from synthmed.compress.plan import parse_codec_specs

    specs = parse_codec_specs(codec or [])
    qualities = qualities + [q for _, own in specs for q in own or []]
    if len(specs) > 1 or len(qualities) > 1:
        raise UsageError("--decode restores one stream set: give at most one --codec and one --quality")
    with progress(quiet=quiet) as display:
        path = decode_streams(
            streams,
            output,
            codec=specs[0][0] if specs else None,
            quality=qualities[0] if qualities else None,
            overwrite=overwrite,
            progress=display,
        )
    summary = None
    if json:
        from synthmed.data import Dataset

        summary = {"images": len(Dataset.open(path).rows)}
    emit(path, summary, as_json=json)


def _parse_qualities(values: list[str]) -> list[int]:
    return number_list(values, "--quality", example="75 or 50,75", kind=int) or []


def _table(report: dict):
    from rich.table import Table

    table = Table(title=f"{report['split']} split, {report['images']} images (means)")
    for column in ("set", "bpp", "PSNR dB", "SSIM", "MS-SSIM", "enc ms", "dec ms"):
        table.add_column(column, justify="left" if column == "set" else "right")

    def fmt(value, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    for r in report["results"]:
        mean = {key: r[key]["mean"] for key in ("bpp", "psnr", "ssim", "ms_ssim", "encode_s", "decode_s")}
        psnr = "lossless" if mean["psnr"] is None and r["exact_images"] == r["images"] else fmt(mean["psnr"], ".2f")
        table.add_row(
            r["set"], fmt(mean["bpp"], ".3f"), psnr, fmt(mean["ssim"], ".4f"), fmt(mean["ms_ssim"], ".4f"),
            fmt(mean["encode_s"] and mean["encode_s"] * 1000, ".1f"), fmt(mean["decode_s"] and mean["decode_s"] * 1000, ".1f"),
        )
    return table

"""`synthmed compress`: encode a dataset into bitstream files with a learned or classical codec
and report rate and quality; `--decode` restores a dataset folder from such an output."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from synthmed.cli.options import Device, FitEpochs, Json, ModelDir, Output, Overwrite, Quiet, Seed, Splits
from synthmed.parsing import comma_list
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
    model: ModelDir = None,
    device: Device = "auto",
    seed: Seed = 0,
    overwrite: Overwrite = False,
    json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Compress a dataset into one bitstream file per image, with report.json and a rate-distortion plot; --decode restores a dataset.

    Bits per pixel are counted from the real file sizes."""
    qualities = _parse_qualities(quality or [])
    if (dataset is None) == (decode is None):
        raise UsageError("give either a DATASET to compress or --decode OUT to restore one, not both")
    if decode is not None:
        _decode(decode, output, codec, qualities, overwrite=overwrite, json=json, quiet=quiet)
        return

    from synthmed.devices import resolve_device
    from synthmed.compress.job import compress_dataset

    chosen_device = resolve_device(device)
    split_list = comma_list(splits) or []
    with progress(quiet=quiet) as bar:
        report = compress_dataset(
            dataset,
            output,
            codecs=codec or ["learned-hyperprior"],
            qualities=qualities or None,
            splits=split_list,
            report_split=report_split,
            fit_epochs=fit_epochs,
            model_dir=model,
            device=chosen_device,
            seed=seed,
            overwrite=overwrite,
            tasks=_tasks(bar),
        )
    show(_table(report), quiet=quiet)
    emit(output, report, as_json=json)


def _decode(streams: Path, output: Path, codec: Optional[list[str]], qualities: list[int], *, overwrite: bool,
            json: bool, quiet: bool) -> None:
    from synthmed.compress.decode import decode_streams
    from synthmed.compress.job import parse_codec_specs

    specs = parse_codec_specs(codec or [])
    qualities = qualities + [q for _, own in specs for q in own or []]
    if len(specs) > 1 or len(qualities) > 1:
        raise UsageError("--decode restores one stream set: give at most one --codec and one --quality")
    with progress(quiet=quiet) as bar:
        path = decode_streams(
            streams,
            output,
            codec=specs[0][0] if specs else None,
            quality=qualities[0] if qualities else None,
            overwrite=overwrite,
            tasks=_tasks(bar),
        )
    summary = None
    if json:
        from synthmed.data import Dataset

        summary = {"images": len(Dataset.open(path).rows)}
    emit(path, summary, as_json=json)


def _parse_qualities(values: list[str]) -> list[int]:
    qualities = []
    for value in values:
        for part in value.split(","):
            try:
                qualities.append(int(part))
            except ValueError:
                raise UsageError(f"--quality {value!r}: expected whole numbers such as 75 or 50,75") from None
    return qualities


def _tasks(bar):
    def task(description: str, total: int):
        handle = bar.add_task(description, total=total, unit="img" if description.startswith(("enc", "dec")) else "epoch")
        return lambda n=1: bar.advance(handle, n)

    return task


def _table(report: dict):
    from rich.table import Table

    table = Table(title=f"{report['split']} split, {report['images']} images")
    for column in ("set", "bpp", "PSNR dB", "SSIM", "MS-SSIM", "enc ms", "dec ms"):
        table.add_column(column, justify="left" if column == "set" else "right")

    def fmt(value, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    for r in report["results"]:
        psnr = "lossless" if r["psnr"] is None and r["exact_images"] == r["images"] else fmt(r["psnr"], ".2f")
        table.add_row(
            r["set"], fmt(r["bpp"], ".3f"), psnr, fmt(r["ssim"], ".4f"), fmt(r["ms_ssim"], ".4f"),
            fmt(r["encode_s"] and r["encode_s"] * 1000, ".1f"), fmt(r["decode_s"] and r["decode_s"] * 1000, ".1f"),
        )
    return table

"""`synthmed compress`: encode a dataset into bitstream files, report rate and quality, decode back.

A compress output folder:

    OUT/
      streams.json          format, the source dataset's classes/channels/bit depth, the stream sets
      streams.csv           one row per (image, set): the dataset row + stream, bytes, bpp, times
      streams/<set>/<split>/<label>/<id>.smb    one bitstream file per image (synthmed.compress.bitstream)
      models/<set>/         learned codecs only: model.safetensors + config.json (needed to decode)
      report.json           per codec and quality: bpp, PSNR, SSIM, MS-SSIM, encode/decode time
      rate_distortion.png   PSNR against bpp, one curve per codec
      provenance.json

A set is one codec at one quality (`jpeg-q75`, `learned-hyperprior-q3`, `png`). bpp is always
8 * file size / pixels of the real file, header included.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from synthmed.compress import bitstream
from synthmed.compress.plan import StreamSet, check_fits, find_model, parse_codec_specs, plan_sets
from synthmed.data import SPLITS, Dataset, OutputFolder, Row, RunOptions
from synthmed.data.resume import resolved
from synthmed.errors import UsageError
from synthmed.jsonio import read_json, write_json
from synthmed.progress import Progress, no_progress, start_task

MANIFEST = "streams.json"
STREAMS_CSV = "streams.csv"
REPORT = "report.json"
RD_PLOT = "rate_distortion.png"
MANIFEST_VERSION = 1


def compress_dataset(
    dataset_path: Path,
    out: Path,
    *,
    codecs: Sequence[str],
    qualities: Sequence[int] | None = None,
    splits: Sequence[str] = SPLITS,
    report_split: str = "test",
    fit_epochs: int | None = None,
    fit_steps: Sequence[int] | None = None,
    refine_steps: int | None = None,
    distortion: str = "mse",
    model_dir: Path | None = None,
    device: Any = "cpu",
    seed: int = 0,
    overwrite: bool = False,
    resume: bool = False,
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """Encode every image of `splits` with every set; returns the report (also in OUT/report.json).

    The output is resumable at the length of its long part: a learned model fitted before an
    interruption is loaded on `resume` instead of fitted again; encoding is redone.

    `fit_steps` (TOP, WARM): fit for optimiser steps instead of `fit_epochs`: TOP for the
    highest quality of each learned codec (fitted from scratch), WARM for each lower one
    (warm-started from the one above). `refine_steps`: per-image latent refinement steps
    when encoding with a learned codec (default: the codec's own). `distortion` (mse or
    ms-ssim): what the learned models are fitted and their latents refined to lower; a model
    loaded with `model_dir` or on `resume` must have been fitted for it."""
    from synthmed.compress.learned import DEFAULT_EPOCHS, DISTORTIONS

    for split in [*splits, report_split]:
        if split not in SPLITS:
            option = "--splits" if split in splits else "--report-split"
            raise UsageError(f"{option}: {split!r} is not one of {', '.join(SPLITS)}")
    if fit_epochs is not None and fit_epochs < 1:
        raise UsageError("--fit-epochs must be at least 1")
    if fit_steps is not None:
        fit_steps = tuple(int(n) for n in fit_steps)
        if len(fit_steps) == 1:
            fit_steps = (fit_steps[0], fit_steps[0])
        if len(fit_steps) != 2 or min(fit_steps) < 1:
            raise UsageError("--fit-steps takes TOP[,WARM], each at least 1")
        if fit_epochs is not None:
            raise UsageError("give --fit-epochs or --fit-steps, not both")
    if refine_steps is not None and refine_steps < 0:
        raise UsageError("--refine-steps must be 0 or more")
    if distortion not in DISTORTIONS:
        raise UsageError(f"--distortion: {distortion!r} is not one of {', '.join(DISTORTIONS)}")
    dataset = Dataset.open(dataset_path)
    rows = dataset.select(split=list(splits))
    if not rows:
        raise UsageError(f"{dataset_path}: no images in split(s) {', '.join(splits)}")
    sets = plan_sets(parse_codec_specs(codecs), qualities)
    check_fits(dataset, rows, sets)
    learned = [s for s in sets if s.learned]
    for stream_set in learned:
        if not hasattr(stream_set.codec, "distortion") and distortion != "mse":
            raise UsageError(f"--distortion {distortion}: codec {stream_set.codec_name} is fitted for its own "
                             "distortion only; drop --distortion or choose a built-in learned codec")
        if hasattr(stream_set.codec, "distortion"):
            stream_set.codec.distortion = distortion
    model_paths = {s.name: find_model(Path(model_dir), s) for s in learned} if model_dir else {}
    train_rows = dataset.select(split="train")
    if learned and not model_dir and not train_rows:
        raise UsageError(f"{dataset_path}: no train split to fit {learned[0].codec_name} on; pass --model DIR")
    if learned and not model_dir:
        dataset.require_uniform_size()
    report_rows = [r for r in rows if r["split"] == report_split] or rows
    dataset.check_images(list({r["id"]: r for r in [*rows, *(train_rows if learned and not model_dir else [])]}.values()))
    options = RunOptions("compress", {
        "--codec": [s.name for s in sets], "--splits": list(splits), "--report-split": report_split,
        "--fit-epochs": None if model_dir or not learned or fit_steps else fit_epochs or DEFAULT_EPOCHS,
        "--fit-steps": None if model_dir or not learned or not fit_steps else list(fit_steps),
        "--refine-steps": refine_steps if learned else None,
        # recorded only when not the default, so outputs started before the option still resume
        **({"--distortion": distortion} if learned and distortion != "mse" else {}),
        "--model": resolved(model_dir), "--seed": seed,
    })

    with OutputFolder(out, inputs=[dataset_path, model_dir], overwrite=overwrite, resume=resume, resumable=True,
                      options=options) as folder:
        if folder.finished:  # --resume of a finished output with the same options: nothing to do
            return read_json(folder.out / REPORT, what="a compress output")
        fit_seconds = _prepare_models(
            dataset, train_rows, learned, folder.tmp / "models", model_paths=model_paths,
            epochs=fit_epochs or DEFAULT_EPOCHS, steps=fit_steps, device=device, seed=seed, progress=progress,
        )
        if refine_steps is not None:
            for stream_set in learned:
                stream_set.codec.refine_steps = refine_steps
        originals = {r["id"]: dataset.read_image(r) for r in report_rows}
        stream_rows: list[dict[str, Any]] = []
        results = []
        for stream_set in sets:
            records, result = _encode_set(dataset, rows, stream_set, folder.tmp, originals, progress)
            stream_rows += records
            results.append({**result, "fit_s": fit_seconds.get(stream_set.name)})
        report = {
            "dataset": str(Path(dataset_path).resolve()),
            "split": report_split if any(r["split"] == report_split for r in rows) else "all",
            "images": len(report_rows),
            "image_size": dataset.image_size,
            "channels": dataset.channels,
            "bit_depth": dataset.bit_depth,
            "results": results,
        }
        _write_outputs(folder, dataset, rows, sets, stream_rows, report)
        folder.write_provenance("compress", [Path(dataset_path)], codecs=[s.name for s in sets])
    return report


def _prepare_models(dataset: Dataset, train_rows, learned: Sequence[StreamSet], models: Path, *,
                    model_paths: dict[str, Path], epochs: int, steps: tuple[int, int] | None, device: Any,
                    seed: int, progress: Progress) -> dict[str, float]:
    """Fit (or load, with --model) every learned set's model and save it under `models/<set>`;
    returns the seconds each took."""
    train_images = dataset.load_images(train_rows) if learned and not model_paths else None
    seconds: dict[str, float] = {}
    previous: dict[int, int] = {}  # id(codec) -> last quality fitted with it
    # Highest quality first; each lower one starts from the one above it.
    for stream_set in sorted(learned, key=lambda s: -s.quality):
        codec = stream_set.codec
        started = time.perf_counter()
        fitted = models / stream_set.name
        if not model_paths and (fitted / "config.json").is_file():  # fitted before an interruption (--resume)
            codec.load(fitted, quality=stream_set.quality)
            previous[id(codec)] = stream_set.quality
            seconds[stream_set.name] = read_json(fitted / "config.json", what="a model folder").get("fit_s")
            continue
        if model_paths:
            codec.load(model_paths[stream_set.name], quality=stream_set.quality)
            channels = codec.config(stream_set.quality)["channels"]
            if channels != dataset.channels:
                raise UsageError(
                    f"--model {model_paths[stream_set.name]}: fitted on {channels}-channel images, "
                    f"{dataset.root} has {dataset.channels}"
                )
        else:
            warm = previous.get(id(codec))
            budget = {"epochs": epochs} if steps is None else {"steps": steps[0] if warm is None else steps[1]}
            unit, total = next(iter(budget.items()))
            with start_task(progress, f"fitting {stream_set.name}", total=total, unit=unit[:-1]) as task:
                codec.fit(train_images, quality=stream_set.quality, **budget, device=device, seed=seed,
                          progress=task, warm_start=warm)
            previous[id(codec)] = stream_set.quality
        seconds[stream_set.name] = time.perf_counter() - started
        codec.save(models / stream_set.name, quality=stream_set.quality,
                   extra={"plugin": stream_set.plugin, "version": stream_set.version,
                          "fit_s": None if model_paths else seconds[stream_set.name]})
    return seconds


def _encode_set(dataset: Dataset, rows, stream_set: StreamSet, root: Path, originals: dict[str, np.ndarray],
                progress: Progress) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Encode every row with one set; measure quality on the rows in `originals` (the report split)."""
    from synthmed.compress.report import image_quality, summarise_set

    records, measured, decoded = [], [], []
    with start_task(progress, f"encoding {stream_set.name}", total=len(rows), unit="img") as task:
        for row in rows:
            record, pixels = _encode_row(dataset, row, stream_set, root, decode=row["id"] in originals)
            records.append(record)
            if pixels is not None:
                measured.append(record)
                decoded.append(pixels)
            task(1)
    quality = image_quality([originals[r["id"]] for r in measured], decoded, bit_depth=dataset.bit_depth)
    for record, values in zip(measured, quality):
        record.update(values)
    result = {
        "set": stream_set.name,
        "codec": stream_set.codec_name,
        "codec_tag": f"{stream_set.codec_name}@{stream_set.version}",
        "quality": stream_set.quality,
        "lossless": bool(stream_set.codec.lossless),
        "images": len(measured),
        **summarise_set(measured),
        "bytes_all_splits": int(sum(r["bytes"] for r in records)),
    }
    return records, result


def _encode_row(dataset: Dataset, row: Row, stream_set: StreamSet, root: Path, *, decode: bool):
    """Encode one image into its bitstream file; decode it back when it is in the report split."""
    from synthmed.data.imageio import channels_of

    pixels = dataset.read_image(row)
    codec = stream_set.codec
    height, width = pixels.shape[:2]
    if max(height, width) > codec.max_side:
        raise UsageError(
            f"{dataset.path_of(row)}: {height}x{width} px is larger than codec {stream_set.codec_name} supports "
            f"({codec.max_side} px per side)"
        )
    bit_depth = 16 if pixels.dtype == np.uint16 else 8
    started = time.perf_counter()
    payload = codec.encode(pixels, quality=stream_set.quality)
    header = bitstream.Header(
        codec=stream_set.codec_name,
        codec_version=codec.stream_version,
        quality=stream_set.quality,
        channels=channels_of(pixels),
        bit_depth=bit_depth,
        height=height,
        width=width,
        model_tag=codec.model_tag(stream_set.quality),
    )
    data = bitstream.pack(header, payload)
    encode_s = time.perf_counter() - started
    relative = Path("streams") / stream_set.name / row["split"] / row["label"] / f"{row['id']}{bitstream.SUFFIX}"
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    size = os.path.getsize(target)
    record: dict[str, Any] = {
        **{k: v for k, v in row.items() if k != "file_name"},
        "set": stream_set.name,
        "codec": stream_set.codec_name,
        "quality": "" if stream_set.quality is None else stream_set.quality,
        "stream": relative.as_posix(),
        "bytes": size,
        "bpp": 8.0 * size / (height * width),
        "encode_s": encode_s,
    }
    decoded = None
    if decode:
        started = time.perf_counter()
        decoded = decode_stream(target.read_bytes(), codec, where=str(target), expect=stream_set)
        record["decode_s"] = time.perf_counter() - started
    return record, decoded


def decode_stream(data: bytes, codec: Any, *, where: str, expect: StreamSet) -> np.ndarray:
    """Check a bitstream's header against the set it belongs to, then decode its payload."""
    header, payload = bitstream.unpack(data, where=where)
    bitstream.check_codec(header, codec=expect.codec_name, codec_version=codec.stream_version, where=where)
    if header.quality != expect.quality:
        raise bitstream.BitstreamError(f"{where}: stream is at quality {header.quality}, its set is {expect.name}")
    if header.model_tag != codec.model_tag(expect.quality):
        raise bitstream.BitstreamError(f"{where}: stream was encoded with another {expect.codec_name} model than models/{expect.name}")
    if header.bit_depth not in codec.bit_depths or header.channels not in (1, 3):
        raise bitstream.BitstreamError(f"{where}: header holds an unsupported image format ({header.channels} ch, {header.bit_depth}-bit)")
    try:
        return codec.decode(payload, quality=expect.quality, shape=header.shape, dtype=header.dtype)
    except bitstream.BitstreamError as exc:
        raise bitstream.BitstreamError(f"{where}: {exc}") from None


def _write_outputs(folder: OutputFolder, dataset: Dataset, rows, sets, stream_rows, report) -> None:
    from synthmed.compress.report import plot_rate_distortion

    manifest = {
        "format_version": MANIFEST_VERSION,
        "bitstream_version": bitstream.FORMAT_VERSION,
        "classes": dataset.classes,
        "channels": dataset.channels,
        "bit_depth": dataset.bit_depth,
        "image_size": dataset.image_size,
        "source": str(dataset.root.resolve()),
        "sets": [
            {
                "name": s.name,
                "codec": s.codec_name,
                "codec_tag": f"{s.codec_name}@{s.version}",
                "quality": s.quality,
                "stream_version": s.codec.stream_version,
                "model": f"models/{s.name}" if s.learned else None,
            }
            for s in sets
        ],
    }
    write_json(folder.tmp / MANIFEST, manifest)
    first = ["set", "codec", "quality", "id", "label", "split", "source", "stream", "bytes", "bpp"]
    rest = sorted({k for r in stream_rows for k in r} - set(first))
    with open(folder.tmp / STREAMS_CSV, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=first + rest, lineterminator="\n")
        writer.writeheader()
        for record in stream_rows:
            writer.writerow({k: _cell(record.get(k)) for k in first + rest})
    write_json(folder.tmp / REPORT, report)
    plot_rate_distortion(report["results"], folder.tmp / RD_PLOT, title=f"{dataset.root.name}: {report['split']} split")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)

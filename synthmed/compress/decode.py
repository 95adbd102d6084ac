"""`synthmed compress --decode`: restore a dataset folder from a compress output."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from synthmed.compress.job import (
    MANIFEST,
    MANIFEST_VERSION,
    STREAMS_CSV,
    decode_stream,
)
from synthmed.compress.plan import StreamSet
from synthmed.data import DatasetWriter
from synthmed.errors import DatasetError, UsageError
from synthmed.jsonio import read_json
from synthmed.progress import Progress, no_progress, start_task


def read_manifest(streams: Path) -> dict[str, Any]:
    path = Path(streams) / MANIFEST
    return read_json(path, what="a compress output", where=f"--decode {streams}",
                     hint="make one with `synthmed compress`", format_version=MANIFEST_VERSION)


def choose_set(manifest: dict[str, Any], streams: Path, *, codec: str | None, quality: int | None) -> dict[str, Any]:
    """The one set to decode: the only one, or the one `--codec`/`--quality` name."""
    sets = manifest["sets"]
    matching = [s for s in sets if (codec is None or s["codec"] == codec) and (quality is None or s["quality"] == quality)]
    names = ", ".join(s["name"] for s in sets)
    if not matching:
        raise UsageError(f"--decode {streams}: no stream set matches --codec/--quality; it holds {names}")
    if len(matching) > 1:
        raise UsageError(f"--decode {streams}: holds several stream sets ({names}); choose one with --codec NAME --quality Q")
    return matching[0]


def decode_streams(
    streams: Path,
    out: Path,
    *,
    codec: str | None = None,
    quality: int | None = None,
    overwrite: bool = False,
    progress: Progress = no_progress,
) -> Path:
    """Restore a dataset folder from one stream set of a compress output."""
    from synthmed.registry import get_entry

    streams = Path(streams)
    manifest = read_manifest(streams)
    chosen = choose_set(manifest, streams, codec=codec, quality=quality)
    entry = get_entry("codec", chosen["codec"])
    stream_set = StreamSet(chosen["codec"], chosen["quality"], entry.factory(), entry.plugin, entry.version,
                           entry.info.learned)
    if stream_set.learned:
        model = str(chosen.get("model") or "")
        if not model.startswith("models/") or ".." in Path(model).parts:
            raise UsageError(f"{streams / MANIFEST}: set {chosen['name']} names no model inside models/")
        stream_set.codec.load(streams / model, quality=chosen["quality"])
    rows = _read_stream_rows(streams, chosen["name"])
    if Path(out).resolve() == streams.resolve():
        raise UsageError(f"-o {out}: is the compress output being decoded; choose another folder")
    carried = ("origin", "subject", "generator", "seed")
    skip = {"set", "codec", "quality", "stream", "bytes", "bpp", "encode_s", "decode_s", "mse", "psnr", "ssim",
            "ms_ssim", "ms_ssim_scales", "sha256", "id", "label", "split", "source", "file_name", *carried}
    with DatasetWriter(out, classes=manifest["classes"], command="compress --decode", parents=[streams],
                       overwrite=overwrite) as writer:
        task = start_task(progress, f"decoding {chosen['name']}", total=len(rows), unit="img")
        for row in rows:
            path = streams / row["stream"]
            if not path.is_file():
                raise DatasetError(f"{streams / STREAMS_CSV}: stream {row['stream']!r} of id {row['id']!r} is missing")
            pixels = decode_stream(path.read_bytes(), stream_set.codec, where=str(path), expect=stream_set)
            extra = {k: v for k, v in row.items() if k not in skip}
            writer.add_image(
                pixels,
                id=row["id"],
                label=row["label"],
                split=row["split"],
                source=row["source"],
                **{k: row.get(k, "") for k in carried},
                **extra,
                codec=chosen["codec_tag"],
                codec_quality=row["quality"],
            )
            task(1)
        task.finish()
    return writer.out


def _read_stream_rows(streams: Path, set_name: str) -> list[dict[str, str]]:
    path = streams / STREAMS_CSV
    if not path.is_file():
        raise UsageError(f"--decode {streams}: no {STREAMS_CSV}")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("set") == set_name]
    for line, row in enumerate(rows, start=2):
        stream = row.get("stream", "")
        parts = Path(stream).parts
        if not stream or Path(stream).is_absolute() or ".." in parts or parts[:1] != ("streams",):
            raise DatasetError(f"{path}: stream path {stream!r} of id {row.get('id')!r} must stay inside streams/")
    if not rows:
        raise UsageError(f"--decode {streams}: {STREAMS_CSV} has no rows for {set_name}")
    return rows

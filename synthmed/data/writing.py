"""Writing a dataset: `DatasetWriter` adds images row by row into an `OutputFolder`, keeps the
resume journal, and finishes with metadata.csv, dataset.json and the train statistics."""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from synthmed.data.imageio import (
    channels_of,
    decode_png,
    encode_png,
    sha256_bytes,
    sha256_file,
    to_chw,
)
from synthmed.data.images import ImageProblem, read_header
from synthmed.data.journal import JOURNAL, read_journal
from synthmed.data.output import OutputFolder, provenance
from synthmed.data.reading import Dataset
from synthmed.data.resume import RunOptions
from synthmed.data.schema import COLUMNS, FORMAT_VERSION, SOURCES, SPLITS, Row
from synthmed.errors import DatasetError, UsageError
from synthmed.jsonio import write_json


class DatasetWriter:
    """Write a new dataset folder row by row.

    Each image is written to a temporary file and renamed, then its row is appended to a
    journal (`rows.jsonl`) in the temporary folder; after a crash, `resume=True` reloads
    the journal so `has(id)` tells what is already done and nothing is written twice.

        with DatasetWriter(out, classes=[...], command="sample-data") as writer:
            writer.add_image(pixels, id="a", label="x", split="train")
        # `out` now exists, complete

    On an exception (Ctrl-C and SIGTERM included) the temporary folder is kept when
    `resumable` (so `--resume` can continue) and removed otherwise; a UsageError always
    removes it: the rule of `OutputFolder`, which it writes into. A resumable writer takes
    the `options` that determine its output (`OutputFolder` records and checks them; without
    them, the command and the inputs' digests are what is checked).
    """

    def __init__(
        self,
        out: str | os.PathLike[str],
        *,
        classes: Sequence[str],
        command: str,
        parents: Sequence[Path] = (),
        overwrite: bool = False,
        resume: bool = False,
        resumable: bool = False,
        info: dict[str, Any] | None = None,
        link_files: bool = True,
        inputs: Sequence[str | os.PathLike[str] | None] = (),
        options: RunOptions | None = None,
    ) -> None:
        if not classes:
            raise UsageError("a dataset needs at least one class")
        self.folder = OutputFolder(out, inputs=[*parents, *inputs], overwrite=overwrite, resume=resume,
                                   resumable=resumable, continue_existing=resumable,
                                   options=options or (RunOptions(command) if resumable else None))
        self.out = self.folder.out
        self.tmp = self.folder.tmp
        self.classes = list(classes)
        self.command = command
        self.parents = list(parents)
        self.resumable = resumable
        self.extra_info = dict(info or {})
        self.link_files = link_files
        self.rows: list[Row] = []
        self._ids: set[str] = set()
        self._shapes: Counter[tuple[int, ...]] = Counter()
        self._dtypes: set[str] = set()
        self._row_shapes: dict[str, tuple[int, ...]] = {}
        self._row_dtypes: dict[str, str] = {}
        self._folders: set[str] = set()
        self._sums: dict[str, PixelSums] = {}  # id -> sums of pixels in hand, so finishing reads no image back
        self._journal_path = self.tmp / JOURNAL
        if self.folder.resumed:
            self._reload_journal()
        # Only `--resume` reads the journal; a writer that cannot resume removes its folder on failure.
        self._journal = open(self._journal_path, "a", encoding="utf-8") if resumable else None
        if self.folder.continues_finished:
            self._seed_from_finished()

    # ---- context manager

    def __enter__(self) -> "DatasetWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        """On success: metadata.csv and dataset.json, then the folder's commit; on a failure (or a
        failure to finish) the folder's own rule: kept for --resume when resumable, unless bad input."""
        if self._journal is not None:
            self._journal.close()
        if exc_type is None:
            try:
                self._write_metadata()
            except BaseException as error:
                self.folder.abandon(error)
                raise
        self.folder.__exit__(exc_type, exc, tb)

    # ---- resume

    def _reload_journal(self) -> None:
        for row in read_journal(self._journal_path):
            if (self.tmp / row["file_name"]).is_file():
                self._remember(row, shape=tuple(row.pop("_shape")), dtype=row.pop("_dtype"))
        # Rewrite the journal with only the rows we kept.
        with open(self._journal_path, "w", encoding="utf-8") as handle:
            for row in self.rows:
                handle.write(json.dumps(self._journal_record(row)) + "\n")

    def _seed_from_finished(self) -> None:
        """`--resume` on a finished output (for example one cut short by --max-requests):
        its rows count as done, and the output is replaced by the continued one on commit."""
        finished = Dataset.open(self.out)
        if finished.classes != self.classes:
            raise UsageError(f"--resume: {self.out} has classes {finished.classes}, not {self.classes}")
        dtype = "uint16" if finished.bit_depth > 8 else "uint8"
        for row in finished.rows:
            target = self.tmp / row["file_name"]
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(os.path.realpath(finished.path_of(row)), target)
            except OSError:
                shutil.copyfile(finished.path_of(row), target)
            pixels_shape = (finished.channels, *(finished.image_size or decode_png(target).shape[:2]))
            self._commit_row(dict(row), shape=pixels_shape, dtype=dtype)

    def _journal_record(self, row: Row) -> dict[str, Any]:
        return {**row, "_shape": list(self._row_shapes[row["id"]]), "_dtype": self._row_dtypes[row["id"]]}

    def _remember(self, row: Row, *, shape: tuple[int, ...], dtype: str) -> None:
        self.rows.append(row)
        self._ids.add(row["id"])
        self._shapes[shape] += 1
        self._dtypes.add(dtype)
        self._row_shapes[row["id"]] = shape
        self._row_dtypes[row["id"]] = dtype

    def has(self, row_id: str) -> bool:
        """True when a row with this id is already written (after `--resume`)."""
        return row_id in self._ids

    # ---- adding rows

    def _new_row(self, *, id: str, label: str, split: str, source: str, extension: str, fields: dict[str, Any]) -> Row:
        if not id or "/" in id or "\\" in id or id.startswith("."):
            raise ValueError(f"invalid row id {id!r}")
        if id in self._ids:
            raise UsageError(f"duplicate id {id!r} in output {self.out}")
        if label not in self.classes:
            raise UsageError(f"unknown label {label!r} for output {self.out}; classes are {self.classes}")
        if split not in SPLITS:
            raise ValueError(f"split {split!r} is not one of {SPLITS}")
        if source not in SOURCES:
            raise ValueError(f"source {source!r} is not one of {SOURCES}")
        row: Row = {c: "" for c in COLUMNS}
        row.update({k: "" if v is None else str(v) for k, v in fields.items()})
        row.update(file_name=f"{split}/{label}/{id}{extension}", id=id, label=label, split=split, source=source)
        return row

    def add_image(
        self,
        pixels: np.ndarray,
        *,
        id: str,
        label: str,
        split: str,
        source: str = "real",
        **fields: Any,
    ) -> Row:
        """Store (H, W) / (H, W, C) uint8 or (H, W) uint16 pixels as PNG and add its row.

        `fields` fills the other columns (origin, subject, generator, seed) and any extra ones.
        """
        row = self._new_row(id=id, label=label, split=split, source=source, extension=".png", fields=fields)
        data = encode_png(pixels)
        self._write_bytes(row, data)
        self._sums[id] = pixel_sums(pixels)
        shape = (channels_of(pixels), *pixels.shape[:2])
        self._commit_row(row, shape=shape, dtype=str(pixels.dtype))
        return row

    def add_png(
        self, data: bytes, *, shape: tuple[int, ...], dtype: str, id: str, label: str, split: str, source: str = "real",
        sums: PixelSums | None = None, **fields: Any
    ) -> Row:
        """Like `add_image` for PNG bytes encoded elsewhere (worker processes); `shape` is (C, H, W).

        `sums`: `pixel_sums` of the encoded pixels, computed where they were in hand; without
        them the train statistics decode this file again when the dataset is finished."""
        row = self._new_row(id=id, label=label, split=split, source=source, extension=".png", fields=fields)
        self._write_bytes(row, data)
        if sums is not None:
            self._sums[id] = sums
        self._commit_row(row, shape=tuple(shape), dtype=dtype)
        return row

    def add_png_file(
        self, staged: str | Path, *, sha256: str, shape: tuple[int, ...], dtype: str, id: str, label: str, split: str,
        source: str = "real", sums: PixelSums | None = None, **fields: Any
    ) -> Row:
        """Like `add_png` for a PNG file written elsewhere on the output's filesystem: it is moved in
        (a rename); `sha256` is the digest of its bytes, computed by whoever wrote them."""
        row = self._new_row(id=id, label=label, split=split, source=source, extension=".png", fields=fields)
        os.replace(staged, self._target(row))
        row["sha256"] = sha256
        if sums is not None:
            self._sums[id] = sums
        self._commit_row(row, shape=tuple(shape), dtype=dtype)
        return row

    def add_file(self, source_path: Path, row: Row, **overrides: Any) -> Row:
        """Copy an existing dataset image with its row (hard link when the filesystem allows).

        `row` keeps its id, label, split and extra columns unless overridden."""
        fields = {k: v for k, v in row.items() if k not in ("file_name", "id", "label", "split", "source")}
        fields.update({k: v for k, v in overrides.items() if k not in ("id", "label", "split", "source")})
        new = self._new_row(
            id=overrides.get("id", row["id"]),
            label=overrides.get("label", row["label"]),
            split=overrides.get("split", row["split"]),
            source=overrides.get("source", row["source"]),
            extension=Path(row["file_name"]).suffix or ".png",
            fields=fields,
        )
        target = self.tmp / new["file_name"]
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            target.unlink()
        try:
            if not self.link_files:
                raise OSError("linking disabled")
            os.link(os.path.realpath(source_path), target)  # the file itself, never a link to a link
        except OSError:
            shutil.copyfile(source_path, target)
        # The digest of the bytes written, never one copied from the input's row.
        new["sha256"] = sha256_file(target)
        if row.get("sha256") and row["sha256"] != new["sha256"]:
            raise DatasetError(f"{source_path}: does not match the sha256 in its metadata.csv row (id {row['id']!r}; "
                               "changed or corrupt); `synthmed info --deep` lists every such file")
        try:
            header = read_header(target, verify=False)
        except ImageProblem as problem:
            raise DatasetError(f"{source_path} (id {row['id']!r}): file {problem}") from None
        self._commit_row(new, shape=header.shape, dtype="uint16" if header.bit_depth > 8 else "uint8")
        return new

    def _target(self, row: Row) -> str:
        """Where the row's file goes, its folder made (once per folder); a string, as building a
        Path per row costs more than the rename it is for."""
        target = os.path.join(self.tmp, row["file_name"])
        folder = os.path.dirname(target)
        if folder not in self._folders:
            os.makedirs(folder, exist_ok=True)
            self._folders.add(folder)
        return target

    def _write_bytes(self, row: Row, data: bytes) -> None:
        target = self._target(row)
        scratch = target + ".tmp"
        with open(scratch, "wb") as handle:
            handle.write(data)
        os.replace(scratch, target)
        row["sha256"] = sha256_bytes(data)

    def _commit_row(self, row: Row, *, shape: tuple[int, ...], dtype: str) -> None:
        self._remember(row, shape=shape, dtype=dtype)
        if self._journal is not None:
            self._journal.write(json.dumps(self._journal_record(row)) + "\n")
            self._journal.flush()

    # ---- finishing

    def finish(self) -> Path:
        """Write metadata.csv and dataset.json, then rename the folder into place (what leaving
        the `with` block does)."""
        self.__exit__(None, None, None)
        return self.out

    def _write_metadata(self) -> None:
        if not self.rows:
            raise UsageError(f"output {self.out}: no images to write")
        columns = list(COLUMNS) + sorted({k for row in self.rows for k in row} - set(COLUMNS))
        with open(self.tmp / "metadata.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")  # lists: DictWriter checks every row's keys
            writer.writerow(columns)
            writer.writerows([row.get(c, "") for c in columns] for row in self.rows)
        self._write_split_metadata(columns)
        channels = {shape[0] for shape in self._shapes}
        if len(channels) != 1:
            raise UsageError(f"output {self.out}: images mix channel counts {sorted(channels)}")
        sizes = {shape[1:] for shape in self._shapes}
        bit_depth = 16 if "uint16" in self._dtypes else 8
        info = {
            "format_version": FORMAT_VERSION,
            "classes": self.classes,
            "channels": channels.pop(),
            "image_size": list(sizes.pop()) if len(sizes) == 1 else None,
            "bit_depth": bit_depth,
            "stats": self._train_stats(bit_depth),
            **self.extra_info,
            "provenance": provenance(self.command, self.parents),
        }
        write_json(self.tmp / "dataset.json", info)
        self._journal_path.unlink(missing_ok=True)

    def _write_split_metadata(self, columns: list[str]) -> None:
        """SPLIT/metadata.csv, the same rows with file_name relative to the split folder: where
        Hugging Face's `load_dataset("imagefolder", data_dir=...)` looks for each split's
        metadata (a root metadata.csv is not matched to split folders)."""
        for split in sorted({row["split"] for row in self.rows}):
            with open(self.tmp / split / "metadata.csv", "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow(columns)
                writer.writerows([row["file_name"].split("/", 1)[1] if c == "file_name" else row.get(c, "") for c in columns]
                                 for row in self.rows if row["split"] == split)

    def _train_stats(self, bit_depth: int) -> dict[str, list[float]] | None:
        """Per-channel mean/std of the real train images on the [0, 1] scale."""
        rows = [r for r in self.rows if r["split"] == "train" and r["source"] == "real"] or [
            r for r in self.rows if r["split"] == "train"
        ]
        if not rows:
            return None
        scale = _scale(bit_depth)
        total = total_sq = None
        count = 0
        for row in rows:
            sums = self._sums.get(row["id"])
            if sums is None or sums.scale != scale:  # resumed or copied rows, or a row of another bit depth
                sums = pixel_sums(decode_png(self.tmp / row["file_name"]), scale)
            total = sums.total if total is None else total + sums.total
            total_sq = sums.total_sq if total_sq is None else total_sq + sums.total_sq
            count += sums.count
        mean = total / count
        std = np.sqrt(np.maximum(total_sq / count - mean**2, 1e-12))
        return {"mean": [round(float(m), 6) for m in mean], "std": [round(float(s), 6) for s in std]}


@dataclass(frozen=True)
class PixelSums:
    """Per-channel sums of one image's values on the [0, 1] scale: what the train statistics add up."""

    scale: float  # the value stored for white (255 or 65535)
    total: np.ndarray  # (C,) float64
    total_sq: np.ndarray  # (C,) float64
    count: int  # pixels per channel

    def __reduce__(self):
        # Preprocess workers send one of these per image: as Python floats (exact for float64)
        # a pickle is ~4x smaller and cheaper than two numpy arrays, in the worker and the main process.
        return _pixel_sums_from, (self.scale, self.total.tolist(), self.total_sq.tolist(), self.count)


def _pixel_sums_from(scale: float, total: list[float], total_sq: list[float], count: int) -> PixelSums:
    return PixelSums(scale, np.array(total, dtype=np.float64), np.array(total_sq, dtype=np.float64), count)


def _scale(bit_depth: int) -> float:
    return 65535.0 if bit_depth > 8 else 255.0


def pixel_sums(pixels: np.ndarray, scale: float | None = None) -> PixelSums:
    """`PixelSums` of stored pixels ((H, W[, C]) uint8/uint16); `scale` defaults to the pixels' own
    bit depth. Worker processes call this on the pixels they encode, so the sums are the ones a
    decode of the written file gives, bit for bit."""
    if scale is None:
        scale = _scale(16 if pixels.dtype == np.uint16 else 8)
    chw = to_chw(pixels)
    # One float64 copy, divided and squared in place: the same values as `/ scale` and `** 2`
    # in new arrays, a third of the memory (which two workers on two cores share).
    flat = chw.reshape(chw.shape[0], -1).astype(np.float64)
    flat /= scale
    total = flat.sum(1)
    np.square(flat, out=flat)
    return PixelSums(scale, total, flat.sum(1), int(flat.shape[1]))

"""Opening a dataset folder: `Dataset.open` validates structure and rows (cheap);
`Dataset.check_images` checks the files the way every command does before reading them
(`Dataset.verify`, what `synthmed info` runs, adds the leakage rule; `deep` hashes and decodes);
`Dataset.load_images` decodes rows once into one array."""

from __future__ import annotations

import csv
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from synthmed.data.imageio import decode_png, to_chw
from synthmed.data.leakage import check_leakage
from synthmed.data.schema import COLUMNS, FORMAT_VERSION, Row, check_info, check_rows
from synthmed.errors import DatasetError
from synthmed.jsonio import read_json


@dataclass
class Dataset:
    root: Path
    info: dict[str, Any]
    rows: list[Row]
    columns: list[str]
    _lines: dict[str, int] | None = field(default=None, repr=False, compare=False)

    # ---- opening and validation

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> "Dataset":
        """Read and validate a dataset folder; the first problem is a one-line DatasetError."""
        root = Path(path)
        if not root.is_dir():
            raise DatasetError(f"{root}: not a dataset folder (no such directory)")
        info_path = root / "dataset.json"
        meta_path = root / "metadata.csv"
        hint = "make one with `synthmed preprocess`"
        info = read_json(info_path, what="a dataset folder", error=DatasetError, hint=hint, format_version=FORMAT_VERSION)
        if not meta_path.is_file():
            raise DatasetError(f"{root}: not a dataset folder (no metadata.csv); {hint}")
        check_info(info, info_path)
        rows, columns = read_metadata(meta_path)
        dataset = cls(root, info, rows, columns)
        dataset._check_rows()
        return dataset

    def _check_rows(self) -> None:
        check_rows(self.root, self.classes, self.rows)

    def check_images(self, rows: Sequence[Row] | None = None, *, deep: bool = False) -> None:
        """The one check of image files (synthmed.data.images) every command runs on the rows
        it will read, before creating any output: size, channels, bit depth, truncation; with
        `deep`, also every file's sha256 and a full decode."""
        from synthmed.data.images import check_images

        check_images(self, rows, deep=deep)

    def verify(self, *, deep: bool = False) -> None:
        """What `synthmed info` checks: every image as the commands check it, and the leakage rule."""
        self.check_images(deep=deep)
        check_leakage(self.rows, where=str(self.root))

    def where(self, row: Row) -> str:
        """`<root>/metadata.csv line N (id 'x')`: how errors name a row."""
        if self._lines is None:
            self._lines = {r["id"]: line for line, r in enumerate(self.rows, start=2)}
        return f"{self.root / 'metadata.csv'} line {self._lines.get(row['id'], '?')} (id {row['id']!r})"

    # ---- facts

    @property
    def classes(self) -> list[str]:
        return list(self.info["classes"])

    @property
    def channels(self) -> int:
        return int(self.info["channels"])

    @property
    def image_size(self) -> tuple[int, int] | None:
        """(height, width), or None when the images have mixed sizes."""
        size = self.info.get("image_size")
        return (int(size[0]), int(size[1])) if size else None

    @property
    def bit_depth(self) -> int:
        return int(self.info.get("bit_depth", 8))

    @property
    def stats(self) -> dict[str, list[float]]:
        """Per-channel mean and std of the train split, on the [0, 1] scale."""
        return self.info.get("stats") or {"mean": [0.5] * self.channels, "std": [0.25] * self.channels}

    def path_of(self, row: Row) -> Path:
        return self.root / row["file_name"]

    def select(
        self,
        split: str | Sequence[str] | None = None,
        source: str | Sequence[str] | None = None,
        labels: Sequence[str] | None = None,
    ) -> list[Row]:
        """Rows matching all given filters (a string or a list of accepted values)."""

        def accepts(value: str, wanted: str | Sequence[str] | None) -> bool:
            if wanted is None:
                return True
            return value == wanted if isinstance(wanted, str) else value in wanted

        return [
            row
            for row in self.rows
            if accepts(row["split"], split) and accepts(row["source"], source) and accepts(row["label"], labels)
        ]

    def counts(self) -> Counter[tuple[str, str, str]]:
        """(split, label, source) -> number of images."""
        return Counter((row["split"], row["label"], row["source"]) for row in self.rows)

    def require_uniform_size(self) -> tuple[int, int]:
        size = self.image_size
        if size is None:
            raise DatasetError(f"{self.root}: images have mixed sizes; run `synthmed preprocess --size N` first")
        return size

    # ---- pixels

    def label_indices(self, rows: Sequence[Row]) -> np.ndarray:
        index = {name: i for i, name in enumerate(self.classes)}
        return np.array([index[row["label"]] for row in rows], dtype=np.int64)

    def load_images(self, rows: Sequence[Row], *, workers: int = 4) -> np.ndarray:
        """Decode rows once into one (N, C, H, W) uint8 or uint16 array."""
        size = self.require_uniform_size()
        dtype = np.uint16 if self.bit_depth > 8 else np.uint8
        out = np.empty((len(rows), self.channels, *size), dtype=dtype)

        def load(item: tuple[int, Row]) -> None:
            i, row = item
            chw = to_chw(self.read_image(row))
            if chw.shape != out.shape[1:]:
                raise DatasetError(f"{self.where(row)}: file {row['file_name']!r} has shape {chw.shape}, "
                                   f"dataset.json says {out.shape[1:]}")
            out[i] = chw

        # Pillow releases the GIL while decoding, so threads overlap the work.
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(load, enumerate(rows)))
        return out


    def read_image(self, row: Row) -> np.ndarray:
        """The pixels of one row (synthmed.data.imageio.decode_png); a file that does not decode
        is one DatasetError line naming the row."""
        try:
            return decode_png(self.path_of(row))
        except Exception as exc:  # noqa: BLE001 - any decoder failure means unreadable
            reason = str(exc).splitlines()[0] if str(exc) else ""
            raise DatasetError(f"{self.where(row)}: file {row['file_name']!r} is not a readable image "
                               f"({type(exc).__name__}: {reason})") from None


def read_metadata(meta_path: Path) -> tuple[list[Row], list[str]]:
    try:
        # utf-8-sig: a spreadsheet's byte-order mark is not part of the first column's name
        with open(meta_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = list(reader.fieldnames or [])
            missing = [c for c in COLUMNS if c not in columns]
            if missing:
                raise DatasetError(f"{meta_path}: missing required column(s) {', '.join(missing)}")
            rows = []
            for line, row in enumerate(reader, start=2):
                if None in row or any(value is None for value in row.values()):
                    raise DatasetError(f"{meta_path} line {line}: wrong number of fields")
                rows.append(row)
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{meta_path}: not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise DatasetError(f"{meta_path}: not valid CSV ({exc})") from None
    return rows, columns


def iter_chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]

"""Opening a dataset folder: `Dataset.open` validates structure and rows (cheap);
`Dataset.verify` also hashes and decodes every file (what `synthmed info` runs);
`Dataset.load_images` decodes rows once into one array."""

from __future__ import annotations

import csv
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from synthmed.data.imageio import decode_png, sha256_file, to_chw
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

    def verify(self, *, workers: int = 4) -> None:
        """Full check: every file's sha256 and that it decodes, plus the leakage rule."""

        def check(item: tuple[int, Row]) -> str | None:
            line, row = item
            where = f"{self.root / 'metadata.csv'} line {line} (id {row['id']!r})"
            path = self.path_of(row)
            if row["sha256"] and sha256_file(path) != row["sha256"]:
                return f"{where}: file {row['file_name']!r} does not match its sha256 (changed or corrupt)"
            try:
                decode_png(path)
            except Exception as exc:  # noqa: BLE001 - any decoder failure means unreadable
                return f"{where}: file {row['file_name']!r} is not a readable image ({type(exc).__name__}: {exc})"
            return None

        with ThreadPoolExecutor(max_workers=workers) as pool:
            for problem in pool.map(check, enumerate(self.rows, start=2)):
                if problem:
                    raise DatasetError(problem)
        check_leakage(self.rows, where=str(self.root))

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
            pixels = decode_png(self.path_of(row))
            chw = to_chw(pixels)
            if chw.shape != out.shape[1:]:
                raise DatasetError(
                    f"{self.path_of(row)}: shape {chw.shape} differs from dataset.json ({out.shape[1:]})"
                )
            out[i] = chw

        # Pillow releases the GIL while decoding, so threads overlap the work.
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(load, enumerate(rows)))
        return out


def read_metadata(meta_path: Path) -> tuple[list[Row], list[str]]:
    try:
        with open(meta_path, newline="", encoding="utf-8") as handle:
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

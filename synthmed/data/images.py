"""The one check of a dataset's image files, used by every command that reads them and by
`synthmed info` (so info passes exactly what the commands accept).

Each file must open as an image whose size, channel count and bit depth are those of
dataset.json, with no more pixels than the decompression-bomb limit, and whose PNG chunks are
complete with matching checksums (Pillow's `verify`: it reads the file but decodes nothing, so
a truncated or damaged file is found before any output is created). `deep` also checks the
sha256 of every file and decodes it (`synthmed info --deep`).

A problem is one DatasetError line naming metadata.csv, the row's line and id, and the file.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from synthmed.data.imageio import decode_png, sha256_file, to_chw  # also sets Pillow's pixel limit
from synthmed.data.schema import Row
from synthmed.errors import DatasetError

if TYPE_CHECKING:
    from synthmed.data.reading import Dataset

SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
COLOUR_MODES = ("RGB", "RGBA", "P", "CMYK", "YCbCr")  # decode_png gives these 3 channels


@dataclass(frozen=True)
class Header:
    """What a file's header says, as `decode_png` will return it."""

    channels: int
    height: int
    width: int
    bit_depth: int

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.channels, self.height, self.width


class ImageProblem(Exception):
    """Why a file is not a usable dataset image (the message completes 'file NAME ...')."""


def read_header(path: Path, *, verify: bool = True) -> Header:
    """The header of an image file; ImageProblem when it is empty, not an image, over the pixel
    limit or (with `verify`) truncated or damaged."""
    from PIL import Image, UnidentifiedImageError

    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageProblem(f"cannot be read ({exc.strerror})") from None
    if size == 0:
        raise ImageProblem("is empty (0 bytes)")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as image:
                width, height = image.size
                mode = image.mode
                if verify:
                    image.verify()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageProblem(f"declares more than {Image.MAX_IMAGE_PIXELS} pixels (decompression bomb guard)") from None
        except UnidentifiedImageError:
            raise ImageProblem("is not an image file Pillow can read") from None
        except Exception as exc:  # noqa: BLE001 - any failure to walk the file means it is damaged
            raise ImageProblem(f"is truncated or damaged ({_reason(exc)})") from None
    if mode in SIXTEEN_BIT_MODES:
        return Header(1, height, width, 16)
    return Header(3 if mode in COLOUR_MODES else 1, height, width, 8)


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def problem_of(dataset: "Dataset", row: Row, *, deep: bool = False) -> str | None:
    """What is wrong with one row's file (None: nothing), as checked for `dataset`."""
    path = dataset.path_of(row)
    try:
        # A changed file is named as such (deep) before whatever its new bytes look like.
        if deep and row.get("sha256") and sha256_file(path) != row["sha256"]:
            raise ImageProblem("does not match its sha256 (changed or corrupt)")
        header = read_header(path)
        size = dataset.image_size
        if size is not None and (header.height, header.width) != size:
            raise ImageProblem(f"is {header.height}x{header.width} px, dataset.json says {size[0]}x{size[1]}")
        if header.channels != dataset.channels:
            raise ImageProblem(f"has {header.channels} channel(s), dataset.json says {dataset.channels}")
        if header.bit_depth != dataset.bit_depth:
            raise ImageProblem(f"is {header.bit_depth}-bit, dataset.json says {dataset.bit_depth}-bit")
        if deep:
            try:
                pixels = decode_png(path)
            except Exception as exc:  # noqa: BLE001 - any decoder failure means unreadable
                raise ImageProblem(f"does not decode ({_reason(exc)})") from None
            if to_chw(pixels).shape != header.shape:
                raise ImageProblem(f"decodes to shape {to_chw(pixels).shape}, its header says {header.shape}")
    except ImageProblem as problem:
        return f"{dataset.where(row)}: file {row['file_name']!r} {problem}"
    return None


def check_images(dataset: "Dataset", rows: Sequence[Row] | None = None, *, deep: bool = False,
                 workers: int = 4) -> None:
    """Raise DatasetError for the first row (in dataset order) whose file is not a usable image."""
    rows = dataset.rows if rows is None else rows
    with ThreadPoolExecutor(max_workers=workers) as pool:  # file reads and CRCs release the GIL
        for problem in pool.map(lambda row: problem_of(dataset, row, deep=deep), rows):
            if problem:
                raise DatasetError(problem)

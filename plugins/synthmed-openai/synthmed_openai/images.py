"""Source images to what the images API accepts, and its answers back to the dataset's shape.

The API wants a square PNG under 4 MB at one of a few sizes, in RGB; datasets hold
grayscale or RGB images of any aspect ratio. A source is padded to a square with black
(not stretched, so anatomy keeps its proportions), scaled to the request size and sent as
RGB; the answer is scaled back, the padding cropped away, and converted to the dataset's
channels.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from synthmed.generate.square import from_square_rgb, to_square_rgb
from synthmed.errors import UsageError

MAX_UPLOAD_BYTES = 4 * 1024 * 1024  # the API's limit for a variation's source PNG
SIZES = {
    # mode -> square sizes the endpoint accepts
    "variation": (256, 512, 1024),
    "edit": (256, 512, 1024),  # GPT image models take 1024x1024; 256/512 only on compatible servers
}
AUTO_SIDE = {"variation": None, "edit": 1024}  # None: the smallest size that holds the source


@dataclass(frozen=True)
class PreparedImage:
    png: bytes  # what is uploaded
    side: int  # the square side it was scaled to
    box: tuple[int, int, int, int]  # where the source lies inside the square (left, top, right, bottom)
    shape: tuple[int, int, int]  # the source's (C, H, W)


def parse_size(value: object, mode: str) -> int | None:
    """`-g size=512` or `512x512` -> 512; None picks per image (see `request_side`)."""
    if value is None or value == "auto":
        return None
    text = str(value).lower()
    width, _, height = text.partition("x")
    try:
        side = int(width)
        if height and int(height) != side:
            raise ValueError
    except ValueError:
        raise UsageError(f"-g size={value}: expected a square size such as 1024 or 1024x1024") from None
    if side not in SIZES[mode]:
        allowed = ", ".join(f"{s}x{s}" for s in sorted(SIZES[mode]))
        raise UsageError(f"-g size={value}: mode {mode} accepts {allowed}")
    return side


def check_source(pixels: np.ndarray, mode: str, source_id: str) -> None:
    """Refuse sources the API cannot take (before anything is uploaded)."""
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[0] not in (1, 3):
        raise UsageError(
            f"source image {source_id!r}: {pixels.dtype} with shape {pixels.shape} is not supported; "
            "the images API takes 8-bit grayscale or RGB images"
        )
    largest = max(SIZES[mode])
    if max(pixels.shape[1:]) > largest:
        raise UsageError(
            f"source image {source_id!r} is {pixels.shape[2]}x{pixels.shape[1]} px; the images API returns at most "
            f"{largest}x{largest}, so variations would lose resolution: run `synthmed preprocess --size {largest}` first"
        )


def request_side(shape: tuple[int, ...], mode: str, size: int | None) -> int:
    """The requested square side: `size`, else 1024 for edit and for variation the smallest
    allowed side that holds the source (cheaper and faster, nothing is lost)."""
    if size is not None:
        return size
    if AUTO_SIDE[mode] is not None:
        return AUTO_SIDE[mode]
    longest = max(shape[1:])
    fitting = [s for s in sorted(SIZES[mode]) if s >= longest]
    return fitting[0] if fitting else max(SIZES[mode])


def prepare(pixels: np.ndarray, side: int, *, max_bytes: int = MAX_UPLOAD_BYTES) -> PreparedImage:
    """uint8 (C, H, W) -> a square RGB PNG of `side` px with the source centred on black."""
    image, box = to_square_rgb(pixels, side)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    png = buffer.getvalue()
    if len(png) >= max_bytes:
        raise UsageError(f"a source image encodes to {len(png) / 2**20:.1f} MB at {side}x{side}; the API takes under "
                         f"{max_bytes / 2**20:.0f} MB: pass a smaller -g size")
    return PreparedImage(png, side, box, tuple(pixels.shape))


def restore(data: bytes, prepared: PreparedImage) -> np.ndarray:
    """The API's image bytes -> uint8 (C, H, W) with the source's size and channels."""
    with Image.open(io.BytesIO(data)) as answer:
        answer.load()
        return from_square_rgb(answer, prepared.box, prepared.shape)

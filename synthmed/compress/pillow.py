"""Classical codecs through Pillow: PNG (lossless), JPEG, WebP and JPEG 2000.

Each is what a user would otherwise pick to store medical images; `compress` runs them
through the same bitstream files and report as the learned codecs, so bpp and quality
are compared on equal terms (the bitstream header is counted for every codec).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, features

from synthmed.compress.bitstream import BitstreamError


@dataclass
class PillowCodec:
    """One Pillow format; `save_args(quality)` gives the keyword arguments of `Image.save`."""

    name: str
    format: str
    lossless: bool
    quality_range: tuple[int, int] | None
    default_qualities: tuple[int, ...]
    max_side: int
    bit_depths: tuple[int, ...] = (8,)
    stream_version: int = 1
    quality_meaning: str = ""

    def save_args(self, quality: int | None) -> dict[str, Any]:
        if self.format == "PNG":
            return {"compress_level": 9}
        if self.format == "JPEG":
            return {"quality": quality, "optimize": True}
        if self.format == "WEBP":
            return {"quality": quality, "method": 6}
        if self.format == "JPEG2000":
            # quality = target PSNR in dB of the single quality layer (OpenJPEG's "dB" mode)
            return {"quality_mode": "dB", "quality_layers": [float(quality)], "irreversible": True}
        raise ValueError(self.format)

    def encode(self, pixels: np.ndarray, *, quality: int | None) -> bytes:
        image = Image.fromarray(np.ascontiguousarray(pixels))
        buffer = io.BytesIO()
        image.save(buffer, format=self.format, **self.save_args(quality))
        return buffer.getvalue()

    def decode(self, payload: bytes, *, quality: int | None, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        try:
            with Image.open(io.BytesIO(payload)) as image:
                image.load()
                if dtype == np.uint16:
                    pixels = np.asarray(image).astype(np.uint16)
                else:
                    pixels = np.asarray(image.convert("L" if len(shape) == 2 else "RGB"))
        except (OSError, ValueError, SyntaxError) as exc:
            raise BitstreamError(f"{self.name} payload does not decode ({exc})") from None
        if pixels.shape != tuple(shape):
            raise BitstreamError(f"{self.name} payload decodes to shape {pixels.shape}, header says {tuple(shape)}")
        return pixels

    def model_tag(self, quality: int | None) -> bytes:
        return bytes(8)


def png_codec() -> PillowCodec:
    return PillowCodec("png", "PNG", True, None, (0,), max_side=65535, bit_depths=(8, 16))


def jpeg_codec() -> PillowCodec:
    # libjpeg's own limit is 65500 px per side; quality above 95 only grows files (Pillow docs).
    return PillowCodec(
        "jpeg", "JPEG", False, (1, 95), (10, 30, 50, 75, 90), max_side=65500, quality_meaning="libjpeg quality"
    )


def webp_codec() -> PillowCodec:
    # WebP stores at most 16383 px per side.
    return PillowCodec(
        "webp", "WEBP", False, (0, 100), (10, 30, 50, 75, 90), max_side=16383, quality_meaning="libwebp quality"
    )


def jpeg2000_codec() -> PillowCodec:
    return PillowCodec(
        "jpeg2000",
        "JPEG2000",
        False,
        (20, 80),
        (28, 32, 36, 40, 45),
        max_side=65535,
        bit_depths=(8, 16),
        quality_meaning="target PSNR in dB",
    )


def jpeg2000_available() -> bool:
    """Pillow builds without OpenJPEG cannot write JPEG 2000."""
    return bool(features.check("jpg_2000"))


def webp_available() -> bool:
    return bool(features.check("webp"))

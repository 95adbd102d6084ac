"""Image codecs for `synthmed compress`: the interface every codec follows.

A codec is built by the factory it registers through the `register_codecs` hook and works
on the pixel arrays a dataset stores: (H, W) or (H, W, C), uint8 or uint16. The `compress`
engine wraps its payload in a bitstream file (`synthmed.codecs.bitstream`), so a codec only
turns pixels into bytes and back. Built-ins: `synthmed.codecs.pillow` (PNG, JPEG, WebP,
JPEG 2000) and `synthmed.codecs.learned` (factorized prior, scale hyperprior).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np


class ImageCodec(Protocol):
    name: str  # registry name, written into every bitstream header
    stream_version: int  # payload layout version, checked when decoding
    lossless: bool
    quality_range: tuple[int, int] | None  # None: no quality setting
    default_qualities: tuple[int, ...]  # used when --quality is not given
    max_side: int  # largest height or width it encodes
    bit_depths: tuple[int, ...]  # (8,) or (8, 16)
    needs_fit: bool  # True: also a LearnedImageCodec

    def encode(self, pixels: np.ndarray, *, quality: int | None) -> bytes:
        """The payload for one image (no header)."""

    def decode(self, payload: bytes, *, quality: int | None, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """Pixels of `shape`/`dtype` from a payload; raise BitstreamError if it does not decode."""

    def model_tag(self, quality: int | None) -> bytes:
        """8 bytes naming the model a stream needs (zeros for codecs without one)."""


class LearnedImageCodec(ImageCodec, Protocol):
    def fit(self, images: np.ndarray, *, quality: int, epochs: int, device: Any, seed: int,
            progress: Callable[[int], None] | None = None, warm_start: int | None = None) -> None:
        """Fit the model of one quality on uint8/uint16 (N, C, H, W) train images."""

    def save(self, folder: Path, *, quality: int, extra: dict[str, Any] | None = None) -> None:
        """Write model.safetensors + config.json (synthmed.checkpoint, kind "codec")."""

    def load(self, folder: Path, *, quality: int) -> None:
        """Read a model written by `save`."""

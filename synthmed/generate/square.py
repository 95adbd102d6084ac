"""Helpers for image-conditional generator plugins: fit any image into the square RGB canvas an image model takes, and back."""

from __future__ import annotations

import numpy as np


def to_square_rgb(pixels: np.ndarray, side: int):
    """uint8 (C, H, W) -> (an RGB PIL image of `side` x `side` with the source centred on black,
    the box (left, top, right, bottom) the source fills in the unscaled square).

    Image models want square RGB input; padding (not stretching) keeps anatomy's proportions."""
    from PIL import Image

    channels, height, width = pixels.shape
    square = max(height, width)
    canvas = np.zeros((square, square, 3), dtype=np.uint8)
    top, left = (square - height) // 2, (square - width) // 2
    hwc = pixels.transpose(1, 2, 0)
    canvas[top : top + height, left : left + width] = np.repeat(hwc, 3, axis=2) if channels == 1 else hwc
    image = Image.fromarray(canvas)
    if square != side:
        image = image.resize((side, side), Image.Resampling.LANCZOS)
    return image, (left, top, left + width, top + height)


def from_square_rgb(image, box: tuple[int, int, int, int], shape: tuple[int, ...]) -> np.ndarray:
    """The inverse of `to_square_rgb`: a square answer -> uint8 (C, H, W) of `shape`."""
    from PIL import Image

    channels, height, width = shape
    square = max(height, width)
    image = image.convert("RGB")
    if image.size != (square, square):
        image = image.resize((square, square), Image.Resampling.LANCZOS)
    image = image.crop(box)
    if channels == 1:
        image = image.convert("L")
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if channels == 1 else np.ascontiguousarray(array.transpose(2, 0, 1))

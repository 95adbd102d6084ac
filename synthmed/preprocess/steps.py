"""Per-image processing steps of `preprocess`, in the order they run.

Pixels are float32 in [0, 1] between steps; `quantise` makes the stored uint8/uint16 array.
8-bit grey input that needs no rescaling stays uint8 instead (`uint8_path`), as a Pillow script
would keep it.
Image operations come from scikit-image, scipy.ndimage and Pillow (resize of float "F" images,
which is antialiased and fast); nothing here reimplements them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np

from synthmed.data.imageio import RawImage

INTENSITY_MODES = ("auto", "minmax", "percentile", "dtype")
CHANNEL_MODES = ("auto", "L", "RGB")
FITS = ("pad", "stretch")


@dataclass(frozen=True)
class Steps:
    intensity: str = "auto"  # how input values map to [0, 1]; see to_unit
    percentiles: tuple[float, float] = (0.5, 99.5)
    mode: str = "auto"  # L, RGB, or auto (RGB only for images whose channels differ)
    crop: bool = False
    crop_threshold: float | None = None  # on [0, 1]; None = Otsu's threshold
    crop_margin: float = 0.02  # fraction of the cropped box's longer side
    opening: int = 0  # radius (px) of a grey opening (removes bright specks); 0 = off
    closing: int = 0  # radius (px) of a grey closing (fills dark specks); 0 = off
    size: tuple[int, int] | None = None  # (height, width)
    fit: str = "pad"  # pad: keep aspect ratio and pad with black; stretch: ignore aspect ratio
    bit_depth: int = 8

    def describe(self) -> list[dict[str, Any]]:
        """The steps as recorded in dataset.json."""
        steps: list[dict[str, Any]] = [{"step": "intensity", "mode": self.intensity}]
        if self.intensity in ("auto", "percentile"):
            steps[0]["percentiles"] = list(self.percentiles)
        steps.append({"step": "channels", "mode": self.mode})
        if self.crop:
            threshold = "otsu" if self.crop_threshold is None else self.crop_threshold
            steps.append({"step": "crop_foreground", "threshold": threshold, "component": "largest", "margin": self.crop_margin})
        if self.opening:
            steps.append({"step": "grey_opening", "radius": self.opening})
        if self.closing:
            steps.append({"step": "grey_closing", "radius": self.closing})
        if self.size:
            steps.append({"step": "resize", "size": list(self.size), "fit": self.fit, "resample": "lanczos"})
        steps.append({"step": "quantise", "bit_depth": self.bit_depth})
        return steps

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def process(raw: RawImage, steps: Steps) -> np.ndarray:
    """One raw image -> stored pixels: uint8 (H, W) / (H, W, 3), or uint16 (H, W)."""
    raw = _grey_if_channels_equal(raw, steps.mode)
    if uint8_path(raw, steps):
        return process_uint8(raw.pixels, steps)
    return process_float(raw, steps)


def process_float(raw: RawImage, steps: Steps) -> np.ndarray:
    """The general path: float32 in [0, 1] from `to_unit` to `quantise`."""
    image = to_unit(raw, steps)
    image = to_channels(image, steps.mode)
    if steps.crop:
        image = crop_foreground(image, threshold=steps.crop_threshold, margin=steps.crop_margin)
    if steps.opening or steps.closing:
        image = denoise(image, opening=steps.opening, closing=steps.closing)
    if steps.size:
        image = resize(image, steps.size, fit=steps.fit)
    return quantise(image, steps.bit_depth)


def uint8_path(raw: RawImage, steps: Steps) -> bool:
    """Whether the image can stay uint8 throughout: 8-bit grey input stored at 8 bits, whose
    intensity step maps 0..255 to itself (no window, no inversion, no per-image rescaling).
    Every step then gives the float path's values exactly, except the resize: Pillow's 8-bit
    Lanczos, what a Pillow script gets, mostly within one level of the float resize but more
    beside saturated edges (burned-in text), as its two passes clip between them."""
    pixels = raw.pixels
    return (
        pixels.dtype == np.uint8
        and pixels.ndim == 2
        and min(pixels.shape) >= 1
        and steps.bit_depth == 8
        and steps.intensity in ("auto", "dtype")
        and raw.meta.get("range") is None
        and not raw.meta.get("invert")
        and not (steps.crop and steps.mode == "RGB")  # the float path finds that box on a channel mean
    )


def process_uint8(pixels: np.ndarray, steps: Steps) -> np.ndarray:
    """The path of images `uint8_path` allows: (H, W) uint8 in, uint8 out."""
    if steps.crop:
        box = uint8_foreground_box(pixels, steps)  # the float path's box
        if box is not None:
            pixels = pixels[box]
    if steps.opening or steps.closing:
        # min/max filters commute with the monotone map to [0, 1]: the same values as in float
        pixels = denoise(pixels, opening=steps.opening, closing=steps.closing)
    if steps.size:
        pixels = resize(pixels, steps.size, fit=steps.fit)
    pixels = np.ascontiguousarray(pixels)
    return np.repeat(pixels[:, :, None], 3, axis=2) if steps.mode == "RGB" else pixels


def _grey_if_channels_equal(raw: RawImage, mode: str) -> RawImage:
    """Grey images saved as RGB (most chest X-ray JPEGs): keep one channel before converting to
    float. L and auto give the same result either way; this only saves the work on 3 channels."""
    pixels = raw.pixels
    if mode == "RGB" or pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        return raw
    first = pixels[:, :, 0]
    if np.array_equal(first, pixels[:, :, 1]) and np.array_equal(first, pixels[:, :, 2]):
        return replace(raw, pixels=first)
    return raw


def to_unit(raw: RawImage, steps: Steps) -> np.ndarray:
    """Map input values to [0, 1].

    auto: the reader's window (DICOM/NIfTI), 0..255 for 8-bit files, else min..max;
    minmax / percentile: per image; dtype: the full range of the integer type."""
    pixels = raw.pixels
    if pixels.ndim == 3:
        if pixels.shape[2] in (2, 4):  # grey+alpha, RGBA: drop alpha
            pixels = pixels[:, :, :1] if pixels.shape[2] == 2 else pixels[:, :, :3]
        if pixels.shape[2] == 1:
            pixels = pixels[:, :, 0]
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] != 3) or min(pixels.shape[:2]) < 1:
        raise ValueError(f"unsupported pixel array shape {pixels.shape}")
    values = pixels.astype(np.float32)
    mode = steps.intensity
    if mode == "auto":
        if raw.meta.get("range") is not None:
            low, high = raw.meta["range"]
        elif pixels.dtype == np.uint8:
            low, high = 0.0, 255.0
        else:
            low, high = float(values.min()), float(values.max())
    elif mode == "minmax":
        low, high = float(values.min()), float(values.max())
    elif mode == "percentile":
        low, high = (float(v) for v in np.percentile(values, steps.percentiles))
    elif mode == "dtype":
        if not np.issubdtype(pixels.dtype, np.integer):
            low, high = raw.meta.get("range") or (0.0, 1.0)
        else:
            info = np.iinfo(pixels.dtype)
            low, high = float(min(info.min, 0)), float(info.max)
    else:
        raise ValueError(f"unknown intensity mode {mode!r}")
    scale = float(high) - float(low)
    image = np.clip((values - float(low)) / scale, 0.0, 1.0) if scale > 0 else np.zeros_like(values)
    if raw.meta.get("invert"):
        image = 1.0 - image  # MONOCHROME1: low values are bright
    return image.astype(np.float32)


def to_channels(image: np.ndarray, mode: str) -> np.ndarray:
    """L: luminance (ITU-R 601, as Pillow); RGB: grey repeated; auto: RGB only when channels differ."""
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2) if mode == "RGB" else image
    if mode == "RGB":
        return image
    if mode == "auto" and not is_grey(image):
        return image
    if mode == "auto":
        return image[:, :, 0].copy()
    from skimage.color import rgb2gray

    return rgb2gray(image).astype(np.float32)


def is_grey(image: np.ndarray, tolerance: float = 2.0 / 255) -> bool:
    """An RGB image whose channels agree (JPEG chroma noise aside) is a grey image."""
    return image.ndim == 2 or float(np.abs(image - image[:, :, :1]).max()) <= tolerance


def foreground_box(grey: np.ndarray, *, threshold: float | None, margin: float) -> tuple[slice, slice] | None:
    """Bounding box (with margin) of the largest bright connected component, or None."""
    from skimage.filters import threshold_otsu

    if float(grey.max()) <= float(grey.min()):
        return None
    level = threshold_otsu(grey) if threshold is None else threshold
    return _largest_bright_box(grey > level, margin)


def uint8_foreground_box(pixels: np.ndarray, steps: Steps) -> tuple[slice, slice] | None:
    """`foreground_box` of `to_unit(pixels)` (uint8 (H, W)), from the 256 levels instead of a
    float image: the same box, as to_unit maps each level to one value, in order, and the
    threshold and mask only count and compare values (Otsu's histogram of the float image is
    the one of its distinct values weighted by their counts)."""
    from PIL import Image
    from skimage.filters import threshold_otsu

    values = _level_values(steps)
    # Pillow's histogram of the levels: the counts np.bincount gives, without first widening
    # every pixel to a 64-bit index (~3x the time on a 224 px image).
    counts = np.array(Image.fromarray(np.ascontiguousarray(pixels)).histogram(), dtype=np.int64)
    used = np.flatnonzero(counts)
    if len(used) < 2:
        return None
    level = steps.crop_threshold
    if level is None:
        # what skimage's histogram does for a float image: np.histogram over its min..max, bin centres
        hist, edges = np.histogram(values[used], bins=256, weights=counts[used])
        level = threshold_otsu(hist=(hist, (edges[:-1] + edges[1:]) / 2.0))
    # The levels' values rise with the level, so the levels above `level` (the same comparison
    # as before, on 256 values) are the top ones from `first` on, and `(values > level)[pixels]`
    # is `pixels >= first`: one comparison of the uint8 pixels instead of a lookup per pixel.
    first = 256 - int(np.count_nonzero(values > level))
    return _largest_bright_box(pixels >= first if first < 256 else np.zeros(pixels.shape, bool), steps.crop_margin)


@lru_cache(maxsize=8)
def _level_values(steps: Steps) -> np.ndarray:
    """`to_unit` of the 256 uint8 levels (float32, rising: the intensity modes of `uint8_path`
    map 0..255 to itself scaled, no window, no inversion), once per `steps`."""
    values = to_unit(RawImage(np.arange(256, dtype=np.uint8)[None, :]), steps)[0]
    if not np.all(np.diff(values) > 0):
        raise AssertionError(f"uint8 levels do not rise under {steps}")  # uint8_path admits only rising maps
    values.setflags(write=False)  # shared between calls
    return values


def _largest_bright_box(mask: np.ndarray, margin: float) -> tuple[slice, slice] | None:
    from scipy import ndimage
    from skimage.morphology import disk

    # Opening first, so thin bright lines (labels, rulers) do not join the body to the border.
    radius = max(1, min(mask.shape) // 100)
    mask = ndimage.binary_opening(mask, structure=disk(radius).astype(bool))
    labels, count = ndimage.label(mask)
    if count == 0:
        return None
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    rows, cols = ndimage.find_objects(labels)[int(sizes.argmax()) - 1]
    pad = int(round(margin * max(rows.stop - rows.start, cols.stop - cols.start)))
    height, width = mask.shape
    return (
        slice(max(0, rows.start - pad), min(height, rows.stop + pad)),
        slice(max(0, cols.start - pad), min(width, cols.stop + pad)),
    )


def crop_foreground(image: np.ndarray, *, threshold: float | None, margin: float) -> np.ndarray:
    grey = image if image.ndim == 2 else image.mean(axis=2)
    box = foreground_box(grey, threshold=threshold, margin=margin)
    return image if box is None else np.ascontiguousarray(image[box])


def denoise(image: np.ndarray, *, opening: int, closing: int) -> np.ndarray:
    """Grey opening then closing with disk footprints (the erosion/dilation denoising of the AC-GAN study)."""
    from scipy import ndimage
    from skimage.morphology import disk

    for radius, operation in ((opening, ndimage.grey_opening), (closing, ndimage.grey_closing)):
        if radius:
            footprint = disk(radius).astype(bool)
            if image.ndim == 3:
                footprint = footprint[:, :, None]
            image = operation(image, footprint=footprint)
    return image


def resize(image: np.ndarray, size: tuple[int, int], *, fit: str) -> np.ndarray:
    """Resize to (height, width): `stretch` ignores the aspect ratio, `pad` keeps it and pads with
    black. float32 images stay float32 (clipped to [0, 1]); uint8 images stay uint8."""
    height, width = size
    if fit == "stretch":
        return _resize_exact(image, height, width)
    h, w = image.shape[:2]
    scale = min(height / h, width / w)
    new_h, new_w = max(1, min(height, round(h * scale))), max(1, min(width, round(w * scale)))
    resized = _resize_exact(image, new_h, new_w)
    out = np.zeros((height, width, *image.shape[2:]), dtype=np.uint8 if image.dtype == np.uint8 else np.float32)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    out[top : top + new_h, left : left + new_w] = resized
    return out


def _resize_exact(image: np.ndarray, height: int, width: int) -> np.ndarray:
    from PIL import Image

    if image.shape[:2] == (height, width):
        return image
    if image.dtype == np.uint8:  # mode "L": Pillow's 8-bit Lanczos, which rounds and clips itself
        return np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((width, height), Image.Resampling.LANCZOS))
    planes = image[:, :, None] if image.ndim == 2 else image
    out = np.stack(
        [
            np.asarray(Image.fromarray(np.ascontiguousarray(planes[:, :, c], dtype=np.float32)).resize(
                (width, height), Image.Resampling.LANCZOS
            ))
            for c in range(planes.shape[2])
        ],
        axis=2,
    )
    out = np.clip(out, 0.0, 1.0)  # Lanczos overshoots at edges
    return out[:, :, 0] if image.ndim == 2 else out


def quantise(image: np.ndarray, bit_depth: int) -> np.ndarray:
    if bit_depth == 16:
        return np.round(image * 65535.0).astype(np.uint16)
    return np.round(image * 255.0).astype(np.uint8)

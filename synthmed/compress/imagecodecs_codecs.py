"""JPEG XL (lossy and lossless), AVIF and JPEG-LS through imagecodecs.

These are the codecs a user would compare a learned codec with today: JPEG XL and AVIF for
lossy storage, JPEG XL lossless and JPEG-LS for archives (DICOM has transfer syntaxes for
both). imagecodecs wraps the reference libraries (libjxl, libavif with libaom, CharLS) in one
wheel. Every encoder runs on one thread, as Pillow's do, so encode times compare on equal
terms. Importing this module imports nothing heavy: the registry stores the factories only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from synthmed.compress.bitstream import BitstreamError
from synthmed.errors import UsageError

AVIF_SPEED = 6  # libavif's own default for avifenc: the speed a user gets without tuning


@dataclass
class ImagecodecsCodec:
    """One imagecodecs format; `kind` chooses the encoder call."""

    name: str
    kind: str
    lossless: bool
    quality_range: tuple[int, int] | None
    default_qualities: tuple[int, ...]
    max_side: int
    bit_depths: tuple[int, ...]
    quality_meaning: str = ""
    stream_version: int = 1
    needs_fit: bool = False

    def encode(self, pixels, *, quality: int | None) -> bytes:
        import imagecodecs
        import numpy as np

        pixels = np.ascontiguousarray(pixels)
        if self.kind == "jpegxl":
            # level is libjxl's quality (cjxl -q): 90 is distance 1, "visually lossless"
            return bytes(imagecodecs.jpegxl_encode(pixels, level=quality, numthreads=1))
        if self.kind == "jpegxl-lossless":
            return bytes(imagecodecs.jpegxl_encode(pixels, lossless=True, numthreads=1))
        if self.kind == "avif":
            if pixels.ndim == 2:
                # imagecodecs stores a 2-D array losslessly whatever the level; three equal
                # planes written as YUV 4:0:0 give a monochrome AV1 image (luma only).
                rgb = np.repeat(pixels[:, :, None], 3, axis=2)
                return bytes(imagecodecs.avif_encode(rgb, level=quality, speed=AVIF_SPEED, pixelformat="yuv400",
                                                     numthreads=1))
            return bytes(imagecodecs.avif_encode(pixels, level=quality, speed=AVIF_SPEED, pixelformat="yuv444",
                                                 numthreads=1))
        if self.kind == "jpegls":
            # CharLS's default output buffer is too small for noise-like images (they grow a
            # little): give it room for twice the raw size.
            return bytes(imagecodecs.jpegls_encode(pixels, out=2 * pixels.nbytes + 4096))
        raise ValueError(self.kind)

    def decode(self, payload: bytes, *, quality: int | None, shape: tuple[int, ...], dtype) -> Any:
        import imagecodecs
        import numpy as np

        decoders: dict[str, Callable[[bytes], Any]] = {
            "jpegxl": imagecodecs.jpegxl_decode,
            "jpegxl-lossless": imagecodecs.jpegxl_decode,
            "avif": imagecodecs.avif_decode,
            "jpegls": imagecodecs.jpegls_decode,
        }
        try:
            pixels = np.asarray(decoders[self.kind](payload))
        except (RuntimeError, ValueError) as exc:  # each format's error class derives from RuntimeError
            raise BitstreamError(f"{self.name} payload does not decode ({exc})") from None
        if pixels.ndim == 3 and len(shape) == 2 and pixels.shape[2] == 1:
            pixels = pixels[:, :, 0]
        if pixels.shape != tuple(shape) or pixels.dtype != np.dtype(dtype):
            raise BitstreamError(
                f"{self.name} payload decodes to {pixels.dtype} {pixels.shape}, header says {np.dtype(dtype)} {tuple(shape)}"
            )
        return pixels

    def model_tag(self, quality: int | None) -> bytes:
        return bytes(8)


def _checked(kind: str, codec: ImagecodecsCodec) -> ImagecodecsCodec:
    """Refuse a codec this imagecodecs build was compiled without (wheels can omit any)."""
    try:
        import imagecodecs
    except ImportError:
        raise UsageError(f"codec {codec.name} needs the imagecodecs package: pip install imagecodecs") from None
    module = {"jpegxl": "JPEGXL", "jpegxl-lossless": "JPEGXL", "avif": "AVIF", "jpegls": "JPEGLS"}[kind]
    if not getattr(getattr(imagecodecs, module, None), "available", False):
        raise UsageError(f"codec {codec.name}: this imagecodecs build has no {module} support")
    return codec


def jpegxl_codec() -> ImagecodecsCodec:
    # JPEG XL's Level 5 profile allows 2^18 px per side.
    return _checked("jpegxl", ImagecodecsCodec(
        "jpegxl", "jpegxl", False, (1, 99), (20, 40, 60, 75, 90), max_side=1 << 18, bit_depths=(8, 16),
        quality_meaning="libjxl quality (cjxl -q; 90 = distance 1)",
    ))


def jpegxl_lossless_codec() -> ImagecodecsCodec:
    return _checked("jpegxl-lossless", ImagecodecsCodec(
        "jpegxl-lossless", "jpegxl-lossless", True, None, (0,), max_side=1 << 18, bit_depths=(8, 16),
    ))


def avif_codec() -> ImagecodecsCodec:
    # AV1 allows 65536 px per side; AVIF stores at most 12 bits, so 16-bit data is refused.
    return _checked("avif", ImagecodecsCodec(
        "avif", "avif", False, (1, 99), (20, 40, 60, 75, 90), max_side=65536, bit_depths=(8,),
        quality_meaning="libavif quality (avifenc -q), libaom at speed 6",
    ))


def jpegls_codec() -> ImagecodecsCodec:
    return _checked("jpegls", ImagecodecsCodec(
        "jpegls", "jpegls", True, None, (0,), max_side=65535, bit_depths=(8, 16),
    ))


FACTORIES: dict[str, Callable[[], ImagecodecsCodec]] = {
    "jpegxl": jpegxl_codec,
    "jpegxl-lossless": jpegxl_lossless_codec,
    "avif": avif_codec,
    "jpegls": jpegls_codec,
}

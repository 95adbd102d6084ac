"""The bitstream file: a small header plus the codec's payload, one file per image.

    offset  size  field
    0       4     magic b"SMBS"
    4       1     format version (FORMAT_VERSION)
    5       1     n = length of the codec name
    6       n     codec name, UTF-8
    6+n     2     codec stream version (the payload layout version of that codec)
            2     quality (signed; -1 for codecs without a quality setting)
            1     channels
            1     bit depth (8 or 16)
            4     height
            4     width
            8     model tag (first bytes of the weights' digest; zeros for classical codecs)
            4     payload length
            4     CRC-32 of everything before it and of the payload
            ...   payload

All integers little-endian. The checksum catches an altered or truncated file before any
decoder sees it; the explicit payload length tells truncation apart from alteration.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from synthmed.errors import UsageError

MAGIC = b"SMBS"
FORMAT_VERSION = 1
SUFFIX = ".smb"
NO_QUALITY = -1
MODEL_TAG_BYTES = 8
_FIXED = struct.Struct("<HhBBII8sI")  # codec version .. payload length
_CRC = struct.Struct("<I")


class BitstreamError(UsageError):
    """A bitstream that cannot be decoded as it is (truncated, altered, wrong codec or version)."""


@dataclass(frozen=True)
class Header:
    codec: str
    codec_version: int
    quality: int | None
    channels: int
    bit_depth: int
    height: int
    width: int
    model_tag: bytes = bytes(MODEL_TAG_BYTES)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint16 if self.bit_depth == 16 else np.uint8)

    @property
    def shape(self) -> tuple[int, ...]:
        """Pixel array shape as stored in a dataset: (H, W) or (H, W, C)."""
        return (self.height, self.width) if self.channels == 1 else (self.height, self.width, self.channels)


def pack(header: Header, payload: bytes) -> bytes:
    """Header + payload, ready to write to a file."""
    name = header.codec.encode("utf-8")
    if not 0 < len(name) < 256:
        raise ValueError(f"codec name {header.codec!r} must be 1 to 255 bytes")
    if len(header.model_tag) != MODEL_TAG_BYTES:
        raise ValueError("model tag must be 8 bytes")
    quality = NO_QUALITY if header.quality is None else header.quality
    head = (
        MAGIC
        + bytes([FORMAT_VERSION, len(name)])
        + name
        + _FIXED.pack(
            header.codec_version,
            quality,
            header.channels,
            header.bit_depth,
            header.height,
            header.width,
            header.model_tag,
            len(payload),
        )
    )
    crc = zlib.crc32(payload, zlib.crc32(head))
    return head + _CRC.pack(crc) + payload


def unpack(data: bytes, *, where: str = "bitstream") -> tuple[Header, bytes]:
    """Parse and check a bitstream; any problem is a one-line BitstreamError naming `where`."""
    if len(data) < 6 or data[:4] != MAGIC:
        raise BitstreamError(f"{where}: not a synthmed bitstream (bad magic bytes)")
    version = data[4]
    if version != FORMAT_VERSION:
        raise BitstreamError(
            f"{where}: bitstream format version {version} is not supported (this synthmed reads version "
            f"{FORMAT_VERSION}); decode it with the synthmed version that wrote it"
        )
    name_end = 6 + data[5]
    fixed_end = name_end + _FIXED.size
    head_end = fixed_end + _CRC.size
    if len(data) < head_end:
        raise BitstreamError(f"{where}: truncated bitstream (header cut short at {len(data)} bytes)")
    try:
        codec = data[6:name_end].decode("utf-8")
    except UnicodeDecodeError:
        raise BitstreamError(f"{where}: altered or damaged bitstream (codec name is not text)") from None
    codec_version, quality, channels, bit_depth, height, width, tag, length = _FIXED.unpack(data[name_end:fixed_end])
    (crc,) = _CRC.unpack(data[fixed_end:head_end])
    payload = data[head_end:]
    if len(payload) < length:
        raise BitstreamError(
            f"{where}: truncated bitstream (header promises {length} payload bytes, file holds {len(payload)})"
        )
    if len(payload) > length:
        raise BitstreamError(f"{where}: {len(payload) - length} unexpected bytes after the payload (altered file?)")
    if zlib.crc32(payload, zlib.crc32(data[:fixed_end])) != crc:
        raise BitstreamError(f"{where}: checksum mismatch: the bitstream was altered or damaged")
    header = Header(
        codec=codec,
        codec_version=codec_version,
        quality=None if quality == NO_QUALITY else quality,
        channels=channels,
        bit_depth=bit_depth,
        height=height,
        width=width,
        model_tag=tag,
    )
    return header, payload


def check_codec(header: Header, *, codec: str, codec_version: int, where: str) -> None:
    """Refuse a stream written by another codec or another payload layout version."""
    if header.codec != codec:
        raise BitstreamError(f"{where}: bitstream was written by codec {header.codec!r}, not {codec!r}")
    if header.codec_version != codec_version:
        raise BitstreamError(
            f"{where}: {codec} stream version {header.codec_version} is not supported (this synthmed "
            f"writes and reads version {codec_version})"
        )

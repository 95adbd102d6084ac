"""Reading raw input files through the `read_image` hook (firstresult).

`ReadOptions` carries the reader settings the command line controls (DICOM/NIfTI
windowing, NIfTI slicing). Readers receive it as the hook's `options` argument; a
plugin reader that needs none of it may take only `path`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from synthmed.errors import UsageError
from synthmed.data.imageio import RawImage


@dataclass(frozen=True)
class ReadOptions:
    window: tuple[float, float] | None = None  # (centre, width) in modality units; None = the file's own or percentiles
    percentiles: tuple[float, float] = (0.5, 99.5)  # windowing when the file gives none
    axis: int = 2  # NIfTI: slice along this axis of the canonical (RAS) volume
    slices: tuple[int | None, int | None] | None = None  # NIfTI: slice range start:stop along the axis
    min_foreground: float = 0.01  # NIfTI: drop slices with a smaller fraction of foreground pixels
    volume_index: int | None = None  # NIfTI: which volume of a 4-D file


class UnreadableFile(Exception):
    """A file that cannot be used (corrupt, empty, no pixels, no reader); it goes to rejected.csv."""


def read_file(path: Path, options: ReadOptions) -> list[RawImage]:
    """The images of one input file, from the first plugin that reads it.

    UsageError (an option is needed, e.g. --volume-index) propagates; every other failure
    becomes UnreadableFile with a one-line reason."""
    from synthmed.plugins import get_plugin_manager

    if path.stat().st_size == 0:
        raise UnreadableFile("empty file (0 bytes)")
    try:
        images = get_plugin_manager().hook.read_image(path=path, options=options)
    except (UsageError, UnreadableFile):
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure means this file is unusable
        # The file is named in rejected.csv already; decoders repeat its full path in messages.
        message = (str(exc).splitlines()[0] if str(exc) else "").replace(f"'{path}'", "").replace(str(path), "").strip(" :")
        raise UnreadableFile(f"unreadable ({type(exc).__name__}: {message})".replace(": )", ")")) from None
    if images is None:
        raise UnreadableFile(f"not an image file (no reader for {''.join(path.suffixes) or 'files without extension'})")
    if not images:
        raise UnreadableFile("no usable image in the file (all slices or frames empty)")
    return list(images)

"""What plugin objects look like (typing.Protocol: plugins need not inherit anything).

Tensor conventions: images are (N, C, H, W); uint8 at the boundaries (what is read from
and written to a dataset), float in [0, 1] inside models unless a plugin documents otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, Sequence

import numpy as np

from synthmed.progress import Advance  # what `fit(progress=...)` receives: `progress(n, **status)`


class ClassConditionalGenerator(Protocol):
    """Fitted on a dataset's train split, then sampled per class (`conditioning="class"`)."""

    name: str
    version: str

    def fit(self, images: np.ndarray, labels: np.ndarray, *, epochs: int, device: Any, seed: int,
            progress: Advance | None = None) -> None:
        """images: uint8 (N, C, H, W); labels: int64 (N,) indices into the class list."""

    def sample(self, class_index: int, count: int, *, seed: int, device: Any) -> np.ndarray:
        """`count` new images of one class: uint8 (count, C, H, W)."""

    def save(self, folder: Path) -> None:
        """Write model.safetensors + config.json (synthmed.checkpoint)."""


@dataclass(frozen=True)
class VariationTask:
    """One variation to make: the `index`-th variation of source image `source_id`."""

    source_id: str
    label: str
    index: int
    pixels: np.ndarray  # uint8 (C, H, W), the source at the dataset's size and channels
    seed: int  # derived from the run seed, the source id and the index


class ImageConditionalGenerator(Protocol):
    """Makes variations of real images (`conditioning="image"`); built by its factory from the
    `-g KEY=VALUE` arguments of `synthmed generate`."""

    name: str
    version: str
    upload_host: str | None  # host that receives the source images; None when they stay here

    def columns(self) -> dict[str, str]:
        """Extra metadata columns for every row it makes (mode, model, prompt, ...)."""

    def vary(self, tasks: Sequence[VariationTask], *, device: Any, concurrency: int
             ) -> Iterator[tuple[VariationTask, np.ndarray | Exception]]:
        """Yield (task, uint8 (C, H, W) image at the source's size and channels) as results
        complete, in any order; (task, exception) for a task rejected for good (recorded and
        skipped). Raise to stop the whole run (for example on an authentication error)."""


BatchTransform = Callable[..., Any]
"""An augmentation policy: `policy(images)` on float (N, C, H, W) in [0, 1] (see synthmed.augment)."""


# Image codecs for `synthmed compress`. A codec is built by the factory it registers through
# the `register_codecs` hook and works on the pixel arrays a dataset stores: (H, W) or
# (H, W, C), uint8 or uint16. `compress` wraps its payload in a bitstream file
# (`synthmed.compress.bitstream`), so a codec only turns pixels into bytes and back.


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

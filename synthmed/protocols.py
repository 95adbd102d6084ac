"""What plugin objects look like (typing.Protocol: plugins need not inherit anything).

Tensor conventions: images are (N, C, H, W); uint8 at the boundaries (what is read from
and written to a dataset), float in [0, 1] inside models unless a plugin documents otherwise.

Optional capabilities are protocols of their own, marked `runtime_checkable`: the code asks
`isinstance(generator, SamplesPerSeed)` and uses the capability when it is there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Literal, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:
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


# Optional capabilities of a class-conditional generator; `generate` uses each one it finds.


@runtime_checkable
class ResumableFit(Protocol):
    """`fit(..., num_classes=K, state_dir=DIR)`: K is the length of the class list (labels may
    not use every class); DIR holds a fit checkpoint written after every epoch, from which an
    interrupted fit continues. Declared by the class attribute `resumable_fit = True`, because
    isinstance cannot see which keywords a method takes."""

    resumable_fit: Literal[True]

    def fit(self, images: np.ndarray, labels: np.ndarray, *, epochs: int, device: Any, seed: int,
            progress: Advance | None = None, num_classes: int | None = None, state_dir: Path | None = None) -> None:
        ...


class StopsOnTime(Protocol):
    """`fit(..., minutes=M)`: stop after the last epoch that ends within M minutes (`epochs`
    is then an upper bound) and say in `epochs_done` how many ran. Declared by the class
    attribute `stops_on_time = True`."""

    stops_on_time: Literal[True]
    epochs_done: int


class SelectsCheckpoint(Protocol):
    """`fit(..., check=FitCheck)` (`synthmed.generate.selection`): call the check every few
    epochs with the sampling network in place, end with its best weights, stop when it says
    so, and say in `epochs_done` how many epochs ran, in `selected_epoch` which one was kept.
    Declared by the class attribute `selects_checkpoint = True`."""

    selects_checkpoint: Literal[True]
    epochs_done: int
    selected_epoch: int | None


@runtime_checkable
class CountsFitSteps(Protocol):
    def fit_steps(self, labels: np.ndarray, epochs: int) -> int:
        """The length of a fit in optimizer steps (the progress bar's total)."""


@runtime_checkable
class SamplesPerSeed(Protocol):
    def sample_seeds(self, class_index: int, seeds: Sequence[int], *, device: Any) -> np.ndarray:
        """One image per seed in one batch, image i drawn only from `seeds[i]`, so results
        do not depend on batching or sharding: uint8 (len(seeds), C, H, W)."""


@runtime_checkable
class ChecksSize(Protocol):
    def check_size(self, image_size: tuple[int, int], channels: int) -> None:
        """Raise ValueError (the message says why) for images it cannot be fitted on."""


@runtime_checkable
class LoadsModel(Protocol):
    def load(self, folder: Path) -> None:
        """The inverse of `save(folder)`; needed for `generate --model DIR`."""


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


@runtime_checkable
class ComposablePolicy(Protocol):
    """A policy that joins another of its own type into one (`a + b`), so a spec's parts run
    as one policy (the built-ins then share one warp); other parts run one after another."""

    def __call__(self, images: Any) -> Any: ...

    def __add__(self, other: Any) -> Any: ...


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

    def encode(self, pixels: np.ndarray, *, quality: int | None) -> bytes:
        """The payload for one image (no header)."""

    def decode(self, payload: bytes, *, quality: int | None, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """Pixels of `shape`/`dtype` from a payload; raise BitstreamError if it does not decode."""

    def model_tag(self, quality: int | None) -> bytes:
        """8 bytes naming the model a stream needs (zeros for codecs without one)."""


class LearnedImageCodec(ImageCodec, Protocol):
    """A codec registered with `learned=True`: fitted on the train split, saved with the streams.

    Optional: a `distortion` attribute ("mse" or "ms-ssim", None = mse when fitting and the
    folder's own when loading) that `compress --distortion` sets before fitting or loading; a
    codec without it is refused with `--distortion ms-ssim`."""

    def fit(self, images: np.ndarray, *, quality: int, epochs: int, device: Any, seed: int,
            progress: Callable[[int], None] | None = None, warm_start: int | None = None) -> None:
        """Fit the model of one quality on uint8/uint16 (N, C, H, W) train images."""

    def save(self, folder: Path, *, quality: int, extra: dict[str, Any] | None = None) -> None:
        """Write model.safetensors + config.json (synthmed.checkpoint, kind "codec")."""

    def load(self, folder: Path, *, quality: int) -> None:
        """Read a model written by `save`."""

"""What plugin objects look like (typing.Protocol: plugins need not inherit anything).

Tensor conventions: images are (N, C, H, W); uint8 at the boundaries (what is read from
and written to a dataset), float in [0, 1] inside models unless a plugin documents otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, Sequence

import numpy as np

Progress = Callable[[int], None]  # called with the number of new units of work done


class ClassConditionalGenerator(Protocol):
    """Fitted on a dataset's train split, then sampled per class (`conditioning="class"`)."""

    name: str
    version: str

    def fit(self, images: np.ndarray, labels: np.ndarray, *, epochs: int, device: Any, seed: int,
            progress: Progress | None = None) -> None:
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



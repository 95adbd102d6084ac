"""What shapes a training run (`TrainSettings`) and the checks on it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from synthmed.errors import UsageError
from synthmed.registry import ClassifierInfo, Entry

AMP_MODES = ("auto", "bf16", "fp16", "off")
HISTORY_COLUMNS = ("epoch", "steps", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds",
                   "train_seconds")


@dataclass
class TrainSettings:
    """Everything that shapes a training run (recorded in each model's config.json)."""

    classifier: str = "cnn-basic"
    classifier_args: dict[str, Any] = field(default_factory=dict)
    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 2
    class_weights: bool = False
    augment: str = "none"
    weights: str | None = None
    freeze_backbone: bool = False
    amp: str = "auto"
    val_fraction: float | None = None
    max_steps: int | None = None  # a budget in optimizer steps (with --epochs and early stopping: first to end)


@dataclass
class SplitTensors:
    """One split decoded once: uint8 images (N, C, H, W) and int64 labels, on `images.device`."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class TrainingData:
    classes: list[str]
    channels: int
    image_size: tuple[int, int]
    normalization: dict[str, list[float]]
    train: SplitTensors
    val: SplitTensors
    notes: list[str]


@dataclass(frozen=True)
class Distributed:
    """This process's place in a `torchrun` job (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0




def check_settings(settings: TrainSettings, *, repeats: int) -> None:
    """Option values that are wrong whatever the data (checked before anything is read)."""
    if repeats < 1:
        raise UsageError(f"--repeats {repeats}: must be at least 1")
    if settings.epochs < 1:
        raise UsageError(f"--epochs {settings.epochs}: must be at least 1")
    if settings.batch_size < 2:
        raise UsageError(f"--batch-size {settings.batch_size}: must be at least 2")
    if not settings.lr > 0:
        raise UsageError(f"--lr {settings.lr}: must be positive")
    if settings.weight_decay < 0:
        raise UsageError(f"--weight-decay {settings.weight_decay}: must not be negative")
    if settings.patience < 1:
        raise UsageError(f"--patience {settings.patience}: must be at least 1")
    if settings.amp not in AMP_MODES:
        raise UsageError(f"--amp {settings.amp!r}: expected one of {', '.join(AMP_MODES)}")
    if settings.max_steps is not None and settings.max_steps < 1:
        raise UsageError(f"--max-steps {settings.max_steps}: must be at least 1")
    if settings.val_fraction is not None and not 0 < settings.val_fraction < 1:
        raise UsageError(f"--val-fraction {settings.val_fraction}: must be between 0 and 1")


def check_image_size(entry: Entry[ClassifierInfo], size: tuple[int, int], *, channels: int, where: str) -> None:
    """The dataset's image size and channel count against what the registered classifier accepts."""
    accepted = entry.info.channels
    if accepted and channels not in accepted:
        raise UsageError(f"{where}: images have {channels} channel(s), classifier {entry.name!r} takes "
                         f"{' or '.join(map(str, accepted))}; pick another --model")
    smallest, multiple = entry.info.min_size, entry.info.size_multiple
    if min(size) < smallest:
        designed = f" (it was designed for {entry.info.input_size} px)" if entry.info.input_size else ""
        raise UsageError(f"{where}: images are {size[0]}x{size[1]} px, classifier {entry.name!r} needs at least "
                         f"{smallest} px{designed}; run `synthmed preprocess --size N` or pick another --classifier")
    if size[0] % multiple or size[1] % multiple:
        raise UsageError(f"{where}: images are {size[0]}x{size[1]} px, classifier {entry.name!r} needs sides that "
                         f"are multiples of {multiple}; run `synthmed preprocess --size N`")

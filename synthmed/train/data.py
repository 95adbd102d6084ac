"""The train and val splits, decoded once into tensors on the device."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from synthmed.data import Dataset, origins_of, Row
from synthmed.errors import UsageError
from synthmed.seeding import derive_seed
from synthmed.train.settings import SplitTensors, TrainingData


def split_train_val(dataset: Dataset, *, val_fraction: float | None, seed: int) -> tuple[list[Row], list[Row], list[str]]:
    """The train and val rows; with `val_fraction` (and no val split) a val split is carved out of
    the real train images by subject, per class, and train rows made from them are dropped."""
    train, val = dataset.select("train"), dataset.select("val")
    if not train:
        raise UsageError(f"{dataset.root}: no train split to train on")
    if val and val_fraction is not None:
        raise UsageError(f"--val-fraction: {dataset.root} already has a val split; drop the option to use it")
    if val:
        return train, val, []
    if val_fraction is None:
        raise UsageError(f"{dataset.root}: no val split (needed for early stopping); "
                         "pass --val-fraction 0.15 to carve one out of train by subject")
    carved: list[Row] = []
    too_few: list[str] = []
    for label in dataset.classes:
        real = [row for row in train if row["label"] == label and row["source"] == "real"]
        # Group by subject so a patient never spans train and val; rows without one stand alone.
        groups: dict[str, list[Row]] = {}
        for row in real:
            groups.setdefault(row["subject"] or f"id:{row['id']}", []).append(row)
        if len(groups) < 2:
            too_few.append(label)  # one subject cannot be both trained on and validated on
            continue
        keys = sorted(groups)
        order = np.random.default_rng(derive_seed(seed, "val-split", label)).permutation(len(keys))
        take = min(len(keys) - 1, max(1, round(val_fraction * len(keys))))
        for k in order[:take]:
            carved.extend(groups[keys[k]])
    carved_ids = {row["id"] for row in carved}
    carved_subjects = {row["subject"] for row in carved if row["subject"]}
    kept, dropped = [], 0
    for row in train:
        if row["id"] in carved_ids:
            continue
        if row["subject"] in carved_subjects or any(o in carved_ids for o in origins_of(row)):
            dropped += 1  # made from (or sharing a subject with) a carved val image: would leak
            continue
        kept.append(row)
    val_rows = [{**row, "split": "val"} for row in carved]
    notes = [f"carved a val split of {len(val_rows)} images ({val_fraction:.0%} of train subjects per class)"]
    if too_few:
        notes.append(f"no val images for {', '.join(too_few)}: fewer than 2 train subjects")
    if dropped:
        notes.append(f"dropped {dropped} train images made from carved val images")
    return kept, val_rows, notes


def check_training_rows(dataset: Dataset, train: Sequence[Row], val: Sequence[Row]) -> None:
    if len(dataset.classes) < 2:
        raise UsageError(f"{dataset.root}: one class ({', '.join(dataset.classes)}); a classifier needs at least two")
    missing = [label for label in dataset.classes if not any(row["label"] == label for row in train)]
    if missing:
        raise UsageError(f"{dataset.root}: class {missing[0]!r} has no train images; every class in "
                         "dataset.json needs some (or remove the class)")
    if not val:
        raise UsageError(f"{dataset.root}: the val split is empty")


def load_split(dataset: Dataset, rows: Sequence[Row], device: torch.device) -> SplitTensors:
    from synthmed.batches import pixels_on_device

    labels = torch.from_numpy(dataset.label_indices(rows))
    return SplitTensors(pixels_on_device(dataset.load_images(rows), device), labels.to(device))


def data_device(dataset: Dataset, n_images: int, device: torch.device) -> torch.device:
    """Keep the decoded images on the GPU when they take at most a quarter of its free memory."""
    if device.type != "cuda":
        return torch.device("cpu")
    height, width = dataset.require_uniform_size()
    size = n_images * dataset.channels * height * width * (1 if dataset.bit_depth <= 8 else 4)
    free, _ = torch.cuda.mem_get_info(device)
    return device if size <= free // 4 else torch.device("cpu")


def load_training_data(dataset: Dataset, train: Sequence[Row], val: Sequence[Row], device: torch.device,
                       notes: list[str]) -> TrainingData:
    where = data_device(dataset, len(train) + len(val), device)
    stats = dataset.stats
    return TrainingData(
        classes=dataset.classes,
        channels=dataset.channels,
        image_size=dataset.require_uniform_size(),
        normalization={"mean": list(stats["mean"]), "std": list(stats["std"])},
        train=load_split(dataset, train, where),
        val=load_split(dataset, val, where),
        notes=notes,
    )


def class_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Inverse-frequency weights n / (K * n_k), so every class counts as much in the loss."""
    counts = torch.bincount(labels.cpu(), minlength=num_classes).float()
    return counts.sum() / (num_classes * counts.clamp(min=1))


def resolve_amp(mode: str, device: torch.device) -> torch.dtype | None:
    """Mixed precision only on CUDA: bf16 where supported, else fp16 (with a gradient scaler)."""
    if mode == "off" or (mode == "auto" and device.type != "cuda"):
        return None
    if device.type != "cuda":
        raise UsageError(f"--amp {mode}: mixed precision is only used on CUDA; use --amp off on {device.type}")
    if mode == "auto":
        from synthmed.devices import cuda_amp_dtype

        return cuda_amp_dtype(device)
    return torch.bfloat16 if mode == "bf16" else torch.float16

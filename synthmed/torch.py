"""A dataset folder as a `torch.utils.data.Dataset`, for training code of one's own.

    from synthmed.torch import image_dataset
    train = image_dataset("data", split="train")     # real and synthetic train images
    image, label = train[0]                          # uint8 tensor (C, H, W), class index
    train.class_to_idx                               # {"NonDemented": 0, ...}: dataset.json's order
    train.metadata(0)                                # that image's metadata.csv row

Class indices follow `classes` in dataset.json, the order every synthmed model uses, not the
alphabetical order of torchvision's ImageFolder. Images are decoded one at a time, so it
works with a DataLoader's workers; `transform` gets the uint8 tensor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence


def image_dataset(root: str | Path, *, split: str | Sequence[str] | None = "train",
                  source: str | Sequence[str] | None = None, classes: Sequence[str] | None = None,
                  transform: Callable[[Any], Any] | None = None):  # noqa: ANN201 - a torch Dataset
    """The rows of `split` (None: all) and `source` (real, synthetic, augmented; None: all) of the
    dataset folder at `root`, optionally only `classes`, as a torch Dataset of (image, label)."""
    import torch
    from torch.utils.data import Dataset as TorchDataset

    from synthmed.data import Dataset
    from synthmed.data.imageio import decode_png, to_chw

    from synthmed.errors import UsageError

    data = Dataset.open(root)
    unknown = [name for name in classes or () if name not in data.classes]
    if unknown:
        raise UsageError(f"{root}: no class {unknown[0]!r}; classes are {', '.join(data.classes)}")
    rows = data.select(split, source, list(classes) if classes else None)
    labels = data.label_indices(rows).tolist()

    class FolderDataset(TorchDataset):
        def __len__(self) -> int:
            return len(rows)

        def __getitem__(self, index: int):  # noqa: ANN204
            image = torch.from_numpy(to_chw(decode_png(data.path_of(rows[index]))).copy())
            return (transform(image) if transform else image), labels[index]

        def metadata(self, index: int) -> dict[str, str]:
            return dict(rows[index])

    folder = FolderDataset()
    folder.classes = list(data.classes)
    folder.class_to_idx = {name: i for i, name in enumerate(data.classes)}
    folder.root = data.root
    return folder

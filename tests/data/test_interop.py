"""A dataset folder read by others: synthmed.torch (a torch Dataset with dataset.json's class
indices) and Hugging Face's imagefolder loader (every metadata column, per split)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from synthmed.data import Dataset


def test_items_are_images_with_dataset_json_class_indices_and_their_metadata(sample_dataset):
    from synthmed.data.imageio import decode_png
    from synthmed.torch import image_dataset

    data = Dataset.open(sample_dataset)
    train = image_dataset(sample_dataset, split="train")
    assert len(train) == len(data.select("train"))
    assert train.class_to_idx == {name: i for i, name in enumerate(data.classes)}
    assert list(train.class_to_idx) != sorted(train.class_to_idx)  # not ImageFolder's alphabetical order
    image, label = train[3]
    row = train.metadata(3)
    assert label == train.class_to_idx[row["label"]] and row["split"] == "train"
    assert image.dtype == torch.uint8 and np.array_equal(image[0].numpy(), decode_png(data.path_of(row)))
    images, labels = next(iter(torch.utils.data.DataLoader(train, batch_size=8)))
    assert images.shape == (8, data.channels, *data.image_size) and labels.dtype == torch.int64
    few = image_dataset(sample_dataset, split=None, classes=["ModerateDemented"], transform=lambda x: x.float() / 255)
    assert len(few) == len(data.select(labels=["ModerateDemented"])) and few[0][0].dtype == torch.float32
    with pytest.raises(Exception, match="no class 'Healthy'"):
        image_dataset(sample_dataset, classes=["Healthy"])


def test_each_split_folder_has_its_metadata_with_file_names_relative_to_it(sample_dataset):
    data = Dataset.open(sample_dataset)
    for split in ("train", "val", "test"):
        with open(sample_dataset / split / "metadata.csv", newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        expected = data.select(split)
        assert [r["id"] for r in rows] == [r["id"] for r in expected] and len(rows) > 0
        assert all((sample_dataset / split / r["file_name"]) == data.path_of(e) for r, e in zip(rows, expected))
        assert set(rows[0]) == set(expected[0])


def test_hugging_face_imagefolder_loads_every_metadata_column_per_split(sample_dataset, tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets", reason="the optional `datasets` package is not installed")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    data = Dataset.open(sample_dataset)
    loaded = datasets.load_dataset("imagefolder", data_dir=str(sample_dataset), cache_dir=str(tmp_path / "cache"))
    assert set(loaded) == {"train", "validation", "test"}
    for name, split in (("train", "train"), ("validation", "val"), ("test", "test")):
        part = loaded[name]
        rows = data.select(split)
        assert part.num_rows == len(rows)
        assert {"image", "id", "label", "split", "source", "subject", "sha256"} <= set(part.column_names)
        assert sorted(part["id"]) == sorted(r["id"] for r in rows)
        first = part[0]
        row = next(r for r in rows if r["id"] == first["id"])
        assert first["label"] == row["label"] and first["subject"] == row["subject"]
        assert np.array_equal(np.asarray(first["image"]), np.asarray(Image.open(data.path_of(row))))

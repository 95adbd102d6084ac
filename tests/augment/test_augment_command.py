"""`synthmed augment`: output validity, provenance, balancing, sharding, resume and bad input."""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from synthmed.data import Dataset, partial_path
from synthmed.seeding import derive_seed

POLICY = "hflip(p=0.5)+rotate(degrees=10)"


def rows_of(path: Path) -> list[dict[str, str]]:
    with open(path / "metadata.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def augmented(path: Path) -> dict[str, str]:
    """id -> sha256 of the augmented rows."""
    return {r["id"]: r["sha256"] for r in rows_of(path) if r["source"] == "augmented"}


def test_augment_writes_valid_dataset_with_provenance(run, sample_dataset, tmp_path):
    out = tmp_path / "aug"
    result = run("augment", sample_dataset, "-o", out, "--policy", "hflip(p=0.50) + rotate(degrees=10)", "--copies", 2, "--device", "cpu", "-q", "--seed", 5)
    assert result.code == 0, result.err
    assert result.out.strip() == str(out)
    data = Dataset.open(out)
    data.verify()
    source = Dataset.open(sample_dataset)
    by_id = {r["id"]: r for r in source.rows}
    train = source.select(split="train")
    aug = data.select(source="augmented")
    assert len(aug) == 2 * len(train)
    assert len(data.select(source="real")) == len(source.rows)
    for row in aug:
        origin = by_id[row["origin"]]
        index = int(row["id"].rsplit("-", 1)[1])
        assert row["id"] == f"{origin['id']}--aug-{index:03d}"
        assert row["split"] == "train" == origin["split"] and row["label"] == origin["label"]
        assert row["subject"] == origin["subject"]
        assert row["generator"] == "hflip(p=0.5)+rotate(degrees=10)@" + __import__("synthmed").__version__
        assert int(row["seed"]) == derive_seed(5, "augment", origin["id"], index)
    # augmented pixels differ from their origin, and copies differ from each other
    first = [r for r in aug if r["origin"] == train[0]["id"]]
    pixels = data.load_images(first)
    original = source.load_images([train[0]])
    assert not np.array_equal(pixels[0], original[0]) or not np.array_equal(pixels[1], original[0])
    assert not np.array_equal(pixels[0], pixels[1])
    info = json.loads((out / "dataset.json").read_text())
    assert info["provenance"]["command"] == "augment"
    assert info["augmentation"]["policy"].startswith("hflip(p=0.5)+rotate(degrees=10)@")


def test_only_augmented_classes_and_splits(run, sample_dataset, tmp_path):
    out = tmp_path / "aug"
    result = run(
        "augment", sample_dataset, "-o", out, "--policy", "medical", "--only-augmented",
        "--classes", "MildDemented,ModerateDemented", "--splits", "train", "--splits", "val", "--device", "cpu", "-q",
    )  # fmt: skip
    assert result.code == 0, result.err
    data = Dataset.open(out)
    data.verify()
    source = Dataset.open(sample_dataset)
    wanted = source.select(split=["train", "val"], labels=["MildDemented", "ModerateDemented"])
    assert {r["source"] for r in data.rows} == {"augmented"}
    assert sorted(r["origin"] for r in data.rows) == sorted(r["id"] for r in wanted)
    assert {r["split"] for r in data.rows} == {"train", "val"}


def test_balance_tops_every_class_up_to_the_largest(run, sample_dataset, tmp_path):
    out = tmp_path / "aug"
    result = run("augment", sample_dataset, "-o", out, "--policy", "flips-brightness", "--balance", "--device", "cpu", "-q", "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    data = Dataset.open(out)
    counts = Counter(r["label"] for r in data.select(split="train"))
    assert len(set(counts.values())) == 1, counts
    source = Dataset.open(sample_dataset)
    assert counts["ModerateDemented"] == max(Counter(r["label"] for r in source.select(split="train")).values())
    assert summary["augmented"] == len(data.select(source="augmented"))
    # val/test untouched
    assert Counter(r["label"] for r in data.select(split="val")) == Counter(r["label"] for r in source.select(split="val"))


def test_batches_and_shards_give_identical_images(run, sample_dataset, tmp_path):
    args = ["--policy", "medical+autoaugment", "--only-augmented", "--classes", "MildDemented", "--device", "cpu", "-q"]
    assert run("augment", sample_dataset, "-o", tmp_path / "full", *args, "--batch-size", 64).code == 0
    assert run("augment", sample_dataset, "-o", tmp_path / "small", *args, "--batch-size", 3).code == 0
    assert run("augment", sample_dataset, "-o", tmp_path / "s1", *args, "--shard", "1/2").code == 0
    assert run("augment", sample_dataset, "-o", tmp_path / "s2", *args, "--shard", "2/2").code == 0
    full = augmented(tmp_path / "full")
    assert len(full) > 10
    assert augmented(tmp_path / "small") == full
    s1, s2 = augmented(tmp_path / "s1"), augmented(tmp_path / "s2")
    assert not set(s1) & set(s2)
    assert {**s1, **s2} == full


def test_resume_continues_without_repeating(run, sample_dataset, tmp_path, monkeypatch):
    import synthmed.augment.job as engine

    args = ["--policy", POLICY, "--classes", "MildDemented", "--device", "cpu", "-q", "--batch-size", 8]
    assert run("augment", sample_dataset, "-o", tmp_path / "clean", *args).code == 0

    real_run_policy = engine.run_policy
    calls = {"n": 0}

    def failing_after_two_batches(*a, **k):
        calls["n"] += 1
        if calls["n"] > 2:
            raise RuntimeError("simulated crash")
        return real_run_policy(*a, **k)

    monkeypatch.setattr(engine, "run_policy", failing_after_two_batches)
    out = tmp_path / "resumed"
    crashed = run("augment", sample_dataset, "-o", out, *args)
    assert crashed.code == 1 and not out.exists() and partial_path(out).exists()
    monkeypatch.setattr(engine, "run_policy", real_run_policy)
    result = run("augment", sample_dataset, "-o", out, *args, "--resume", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["already_done"] >= 16
    assert rows_of(out) == rows_of(tmp_path / "clean")
    Dataset.open(out).verify()


def test_plugin_policy_without_generators_is_seeded_per_image(run, sample_dataset, tmp_path, fresh_plugins):
    import torch

    from synthmed.hookspecs import hookimpl
    from synthmed.plugins import get_plugin_manager

    class Plugin:
        @hookimpl
        def register_augmentations(self, register):
            register("speckle", lambda: (lambda x: (x * (0.8 + 0.4 * torch.rand_like(x))).clamp(0, 1)))

    pm = get_plugin_manager()
    pm.register(Plugin(), name="speckle-plugin")
    try:
        args = ["--policy", "speckle", "--only-augmented", "--classes", "MildDemented", "--device", "cpu", "-q"]
        assert run("augment", sample_dataset, "-o", tmp_path / "a", *args, "--batch-size", 64).code == 0
        assert run("augment", sample_dataset, "-o", tmp_path / "b", *args, "--batch-size", 5).code == 0
        assert augmented(tmp_path / "a") == augmented(tmp_path / "b")
        assert rows_of(tmp_path / "a")[0]["generator"] == "speckle@0+inline"
    finally:
        pm.unregister(name="speckle-plugin")


def mixed_channel_dataset(sample_dataset: Path, tmp_path: Path) -> Path:
    from PIL import Image

    copy = tmp_path / "mixed"
    shutil.copytree(sample_dataset, copy)
    row = next(r for r in rows_of(copy) if r["split"] == "train")
    path = copy / row["file_name"]
    with Image.open(path) as image:
        image.convert("RGB").save(path)
    return copy


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--policy", "warp"], "unknown augmentation 'warp'; available: none, hflip"),
        (["--policy", "rotate(deg=3)"], "has no parameter 'deg'"),
        (["--policy", "hflip(p=2)"], "p=2.0 is out of range"),
        (["--policy", "rotate(degrees=-10)"], "degrees=-10.0 is out of range"),
        (["--policy", "hflip", "--copies", "0"], "--copies 0: must be at least 1"),
        (["--policy", "hflip", "--copies", "2", "--balance"], "--balance and --copies exclude each other"),
        (["--policy", "color-jitter"], "needs images with 3 channel(s) (RGB), these have 1"),
        (["--policy", "hflip", "--classes", "Healthy"], "--classes 'Healthy': not a class"),
        (["--policy", "hflip", "--splits", "holdout"], "--splits 'holdout': not one of"),
        (["--policy", "hflip", "--shard", "3/2"], "--shard '3/2'"),
        (["--policy", "hflip", "--device", "tpu"], "--device 'tpu'"),
    ],
)
def test_bad_input_is_a_one_line_usage_error(run, sample_dataset, tmp_path, extra, fragment):
    out = tmp_path / "out"
    result = run("augment", sample_dataset, "-o", out, *extra, "-q")
    assert result.code == 2, result.err
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("synthmed: error: ") and fragment in lines[0], result.err
    assert not out.exists() and not partial_path(out).exists()


def test_mixed_channel_counts_are_refused(run, sample_dataset, tmp_path):
    data = mixed_channel_dataset(sample_dataset, tmp_path)
    out = tmp_path / "out"
    result = run("augment", data, "-o", out, "--policy", "hflip", "--device", "cpu", "-q")
    assert result.code == 2
    line = result.err.strip()
    assert line.startswith("synthmed: error: ") and "\n" not in line
    assert "has 3 channel(s), dataset.json says 1" in line and "metadata.csv line 2" in line
    assert not out.exists() and not partial_path(out).exists()


def test_augmenting_an_augmented_dataset_adds_new_ids(run, sample_dataset, tmp_path):
    first = tmp_path / "first"
    args = ["--classes", "ModerateDemented", "--device", "cpu", "-q"]
    assert run("augment", sample_dataset, "-o", first, "--policy", "hflip", *args).code == 0
    second = tmp_path / "second"
    result = run("augment", first, "-o", second, "--policy", "gamma", *args)
    assert result.code == 0, result.err
    data = Dataset.open(second)
    data.verify()
    aug = data.select(source="augmented")
    train = Dataset.open(sample_dataset).select(split="train", labels=["ModerateDemented"])
    # augmented rows are not augmented again; each real image gets copy 002 from the second run
    assert len(aug) == 2 * len(train)
    assert {r["generator"].split("@")[0] for r in aug} == {"hflip", "gamma"}
    assert all(r["id"].endswith("--aug-002") for r in aug if r["generator"].startswith("gamma"))


def small_dataset(root: Path, *, channels: int, dtype=np.uint8) -> Path:
    from synthmed.data import DatasetWriter

    rng = np.random.default_rng(0)
    high = 65535 if dtype == np.uint16 else 255
    with DatasetWriter(root, classes=["a", "b"], command="test") as writer:
        for i in range(8):
            shape = (16, 16) if channels == 1 else (16, 16, 3)
            pixels = rng.integers(0, high, size=shape, endpoint=True).astype(dtype)
            writer.add_image(pixels, id=f"img-{i}", label="ab"[i % 2], split="train" if i < 6 else "test", subject=f"s{i}")
    return root


def test_rgb_dataset_with_colour_and_auto_policies(run, tmp_path):
    data = small_dataset(tmp_path / "rgb", channels=3)
    out = tmp_path / "out"
    result = run("augment", data, "-o", out, "--policy", "color-jitter+autoaugment", "--copies", 2, "--device", "cpu", "-q")
    assert result.code == 0, result.err
    dataset = Dataset.open(out)
    dataset.verify()
    assert dataset.channels == 3 and len(dataset.select(source="augmented")) == 12
    pixels = dataset.load_images(dataset.select(source="augmented"))
    assert pixels.shape == (12, 3, 16, 16) and pixels.dtype == np.uint8


def test_sixteen_bit_images_stay_sixteen_bit(run, tmp_path):
    data = small_dataset(tmp_path / "deep", channels=1, dtype=np.uint16)
    out = tmp_path / "out"
    assert run("augment", data, "-o", out, "--policy", "hflip(p=1)", "--only-augmented", "--device", "cpu", "-q").code == 0
    dataset = Dataset.open(out)
    assert dataset.bit_depth == 16
    source = Dataset.open(data)
    rows = dataset.select(source="augmented")
    origins = [next(r for r in source.rows if r["id"] == row["origin"]) for row in rows]
    assert np.array_equal(dataset.load_images(rows), source.load_images(origins)[..., ::-1])


def test_preview_sets_originals_next_to_their_copies(run, sample_dataset, tmp_path):
    from PIL import Image

    result = run("augment", sample_dataset, "-o", tmp_path / "aug", "--policy", "hflip(p=1.0)", "--copies", "2",
                 "--preview", tmp_path / "preview.png", "--json", "-q")
    assert result.code == 0, result.err
    assert json.loads(result.out)["preview"] == str(tmp_path / "preview.png")
    image = np.asarray(Image.open(tmp_path / "preview.png").convert("L"))
    classes = len(Dataset.open(sample_dataset).classes)
    assert image.shape[0] > 60 * classes and image.std() > 10  # a row per original, several per class

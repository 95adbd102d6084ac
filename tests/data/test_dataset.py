"""The dataset contract: validation errors, atomic writing, resume, leakage."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from synthmed.data import COLUMNS, check_leakage, Dataset, DatasetWriter, find_leaks, partial_path
from synthmed.errors import DatasetError, UsageError

CLASSES = ["a", "b"]


def make_dataset(root: Path, n: int = 4) -> Path:
    rng = np.random.default_rng(0)
    with DatasetWriter(root, classes=CLASSES, command="test") as writer:
        for i in range(n):
            split = ["train", "train", "val", "test"][i % 4]
            writer.add_image(
                rng.integers(0, 255, (8, 8), dtype=np.uint8),
                id=f"img{i}",
                label=CLASSES[i % 2],
                split=split,
                subject=f"s{i}",
            )
    return root


def copy_of(root: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(root, target)
    return target


def edit_rows(root: Path, change) -> None:
    path = root / "metadata.csv"
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        fields, rows = list(reader.fieldnames), list(reader)
    change(rows)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def test_written_dataset_round_trips(tmp_path):
    root = make_dataset(tmp_path / "d")
    data = Dataset.open(root)
    data.verify()
    assert [r["id"] for r in data.rows] == ["img0", "img1", "img2", "img3"]
    assert data.columns[: len(COLUMNS)] == list(COLUMNS)
    assert data.image_size == (8, 8) and data.channels == 1
    info = json.loads((root / "dataset.json").read_text())
    assert info["provenance"]["command"] == "test"
    assert 0 < info["stats"]["mean"][0] < 1
    images = data.load_images(data.rows)
    assert images.shape == (4, 1, 8, 8) and images.dtype == np.uint8
    # Each split folder is an ImageFolder: <split>/<label>/<file>.
    assert (root / "train" / "a" / "img0.png").is_file()
    assert not partial_path(root).exists()


def test_sixteen_bit_images_are_kept(tmp_path):
    pixels = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
    with DatasetWriter(tmp_path / "d", classes=["a"], command="test") as writer:
        writer.add_image(pixels, id="x", label="a", split="train")
    data = Dataset.open(tmp_path / "d")
    assert data.bit_depth == 16
    assert np.array_equal(data.load_images(data.rows)[0, 0], pixels)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda rows: rows[0].update(file_name="/etc/passwd"), "relative POSIX path"),
        (lambda rows: rows[0].update(file_name="train/a/../../../x.png"), "relative POSIX path"),
        (lambda rows: rows[0].update(file_name="train/a/missing.png"), "is missing"),
        (lambda rows: rows[1].update(id="img0"), "duplicate id"),
        (lambda rows: rows[0].update(label="zebra"), "unknown label 'zebra'"),
        (lambda rows: rows[0].update(split="holdout"), "split 'holdout'"),
        (lambda rows: rows[0].update(source="dreamt"), "source 'dreamt'"),
        (lambda rows: rows[0].update(file_name="val/a/img0.png"), "must be train/a/<file>"),
    ],
)
def test_bad_rows_are_one_line_errors_naming_file_and_row(tmp_path, change, message):
    root = copy_of(make_dataset(tmp_path / "d"), tmp_path)
    edit_rows(root, change)
    with pytest.raises(DatasetError) as info:
        Dataset.open(root)
    text = str(info.value)
    assert message in text and "metadata.csv line" in text and "\n" not in text


def test_symlink_escaping_the_root_is_refused(tmp_path):
    root = copy_of(make_dataset(tmp_path / "d"), tmp_path)
    outside = tmp_path / "outside.png"
    shutil.copyfile(root / "train/a/img0.png", outside)
    (root / "train/a/img0.png").unlink()
    os.symlink(outside, root / "train/a/img0.png")
    with pytest.raises(DatasetError, match="resolves outside the dataset"):
        Dataset.open(root)


def test_missing_column_is_refused(tmp_path):
    root = copy_of(make_dataset(tmp_path / "d"), tmp_path)
    text = (root / "metadata.csv").read_text().replace(",sha256", ",digest", 1)
    (root / "metadata.csv").write_text(text)
    with pytest.raises(DatasetError, match="missing required column"):
        Dataset.open(root)


def test_corrupt_and_changed_files_fail_verification(tmp_path):
    root = copy_of(make_dataset(tmp_path / "d"), tmp_path)
    (root / "train/a/img0.png").write_bytes(b"not a png at all")
    data = Dataset.open(root)  # cheap open sees only that the file exists
    with pytest.raises(DatasetError, match="does not match its sha256"):
        data.verify(deep=True)
    with pytest.raises(DatasetError, match="line 2 .* not an image file"):
        data.verify()  # the shallow check every command runs sees the bytes are no image
    edit_rows(root, lambda rows: rows[0].update(sha256=""))
    with pytest.raises(DatasetError, match="not an image file"):
        Dataset.open(root).verify(deep=True)


def test_not_a_dataset_folder(tmp_path):
    with pytest.raises(DatasetError, match="not a dataset folder"):
        Dataset.open(tmp_path)
    with pytest.raises(DatasetError, match="no such directory"):
        Dataset.open(tmp_path / "nope")


def test_existing_output_is_refused_without_overwrite(tmp_path):
    root = make_dataset(tmp_path / "d")
    before = (root / "metadata.csv").read_bytes()
    with pytest.raises(UsageError, match="exists; pass --overwrite"):
        DatasetWriter(root, classes=CLASSES, command="test")
    assert (root / "metadata.csv").read_bytes() == before
    assert not partial_path(root).exists()


def test_overwrite_replaces_only_after_completion(tmp_path):
    root = make_dataset(tmp_path / "d")
    with pytest.raises(RuntimeError):
        with DatasetWriter(root, classes=CLASSES, command="test", overwrite=True) as writer:
            writer.add_image(np.zeros((8, 8), np.uint8), id="new", label="a", split="train")
            raise RuntimeError("crash midway")
    assert [r["id"] for r in Dataset.open(root).rows] == ["img0", "img1", "img2", "img3"]
    with DatasetWriter(root, classes=CLASSES, command="test", overwrite=True) as writer:
        writer.add_image(np.zeros((8, 8), np.uint8), id="new", label="a", split="train")
    assert [r["id"] for r in Dataset.open(root).rows] == ["new"]


def test_overwrite_refuses_a_folder_synthmed_did_not_write(tmp_path):
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(UsageError, match="does not look like a synthmed output"):
        DatasetWriter(precious, classes=CLASSES, command="test", overwrite=True)
    assert (precious / "thesis.tex").read_text() == "years of work"


def test_resume_keeps_finished_rows_and_skips_them(tmp_path):
    out = tmp_path / "d"
    written = []
    with pytest.raises(KeyboardInterrupt):
        with DatasetWriter(out, classes=CLASSES, command="test", resumable=True) as writer:
            for i in range(10):
                if i == 6:
                    raise KeyboardInterrupt
                writer.add_image(np.full((8, 8), i, np.uint8), id=f"r{i}", label="a", split="train")
                written.append(i)
    assert not out.exists() and partial_path(out).is_dir()
    # Simulate a crash mid-line: a truncated last journal line is ignored.
    with open(partial_path(out) / "rows.jsonl", "a") as handle:
        handle.write('{"file_name": "train/a/r6.png", "id"')
    with DatasetWriter(out, classes=CLASSES, command="test", resume=True, resumable=True) as writer:
        done = [i for i in range(10) if writer.has(f"r{i}")]
        assert done == [0, 1, 2, 3, 4, 5]
        for i in range(10):
            if not writer.has(f"r{i}"):
                writer.add_image(np.full((8, 8), i, np.uint8), id=f"r{i}", label="a", split="train")
    data = Dataset.open(out)
    data.verify()
    assert [r["id"] for r in data.rows] == [f"r{i}" for i in range(10)]


def test_usage_error_while_writing_leaves_nothing(tmp_path):
    out = tmp_path / "d"
    with pytest.raises(UsageError):
        with DatasetWriter(out, classes=CLASSES, command="test", resumable=True) as writer:
            writer.add_image(np.zeros((8, 8), np.uint8), id="x", label="nope", split="train")
    assert not out.exists() and not partial_path(out).exists()


def test_mixed_channels_are_refused(tmp_path):
    out = tmp_path / "d"
    with pytest.raises(UsageError, match="mix channel counts"):
        with DatasetWriter(out, classes=CLASSES, command="test") as writer:
            writer.add_image(np.zeros((8, 8), np.uint8), id="x", label="a", split="train")
            writer.add_image(np.zeros((8, 8, 3), np.uint8), id="y", label="a", split="train")
    assert not out.exists() and not partial_path(out).exists()


def test_add_file_links_or_copies_with_row(tmp_path):
    source = Dataset.open(make_dataset(tmp_path / "d"))
    with DatasetWriter(tmp_path / "e", classes=CLASSES, command="test") as writer:
        for row in source.rows:
            writer.add_file(source.path_of(row), row, extra_note="kept")
    copied = Dataset.open(tmp_path / "e")
    copied.verify()
    assert [r["sha256"] for r in copied.rows] == [r["sha256"] for r in source.rows]
    assert copied.rows[0]["extra_note"] == "kept"


def row(id, split, origin="", subject=""):
    return {"id": id, "split": split, "origin": origin, "subject": subject, "label": "a", "source": "real"}


def test_leakage_from_test_origin_and_shared_subject():
    rows = [
        row("t1", "test", subject="p1"),
        row("v1", "val", subject="p2"),
        row("ok", "train", origin="x", subject="p3"),
        row("syn", "train", origin="other;t1"),
        row("same-patient", "train", subject="p2"),
    ]
    problems = find_leaks(rows)
    assert len(problems) == 2
    assert "made from test image 't1'" in problems[0]
    assert "shares subject 'p2' with the val split" in problems[1]
    with pytest.raises(DatasetError, match=r"leakage: .*\(and 1 more\)"):
        check_leakage(rows)
    check_leakage([row("ok", "train", origin="x")])


def test_leakage_uses_reference_rows_of_parent_datasets():
    parent = [row("t9", "test")]
    child = [row("syn", "train", origin="t9")]
    assert find_leaks(child) == []
    assert len(find_leaks(child, parent)) == 1


def test_resume_continues_a_finished_output(tmp_path):
    out = tmp_path / "d"
    with DatasetWriter(out, classes=CLASSES, command="test", resumable=True) as writer:
        writer.add_image(np.zeros((8, 8), np.uint8), id="first", label="a", split="train")
    with DatasetWriter(out, classes=CLASSES, command="test", resume=True, resumable=True) as writer:
        assert writer.has("first")
        writer.add_image(np.ones((8, 8), np.uint8), id="second", label="b", split="train")
    data = Dataset.open(out)
    data.verify()
    assert [r["id"] for r in data.rows] == ["first", "second"]
    with pytest.raises(UsageError, match="exists; pass --overwrite"):
        DatasetWriter(out, classes=CLASSES, command="test", resumable=True)  # without --resume

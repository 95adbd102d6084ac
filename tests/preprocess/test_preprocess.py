"""`synthmed preprocess`: readers, steps, labels, splits, duplicates, rejections, workers and shards."""

from __future__ import annotations

import csv
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import shared_data
from synthmed.data import Dataset
from synthmed.preprocess.plan import row_id
from synthmed.data.imageio import decode_png

pydicom = pytest.importorskip("pydicom")
nibabel = pytest.importorskip("nibabel")


def dicom_file(name: str) -> Path:
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"pydicom test file {name} is not installed")
    return Path(path)


def nifti_file(name: str) -> Path:
    from nibabel.testing import data_path

    return Path(data_path) / name


def write_png(path: Path, pixels: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(pixels)
    if mode:
        image = image.convert(mode)
    image.save(path)
    return path


def gradient(height: int = 24, width: int = 24, offset: int = 0) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return ((x * 7 + y * 3 + offset * 11) % 256).astype(np.uint8)


def rows_by_id(out: Path) -> dict[str, dict]:
    return {row["id"]: row for row in Dataset.open(out).rows}


def assert_usage_error(result, out: Path, *fragments: str) -> None:
    assert result.code == 2, result.err
    # (a progress bar may precede it on stderr)
    errors = [line for line in result.err.strip().splitlines() if "synthmed: error:" in line]
    assert len(errors) == 1 and result.err.strip().endswith(errors[0]), result.err
    assert errors[0].startswith("synthmed: error:"), result.err
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert not out.exists()
    assert not any(p.name.startswith(f".{out.name}") for p in out.parent.iterdir())


@pytest.fixture
def class_folders(tmp_path) -> Path:
    """train/test class folders with grey PNG, RGB-as-grey JPEG, palette PNG and 16-bit TIFF."""
    root = tmp_path / "raw"
    for split, count in (("train", 4), ("test", 2)):
        for label in ("benign", "malignant"):
            for i in range(count):
                offset = i + (10 if split == "test" else 0) + (0 if label == "benign" else 100)
                write_png(root / split / label / f"{label}_{i}.png", gradient(24, 32, offset))
    write_png(root / "train" / "benign" / "palette.png", gradient(20, 20, 3), mode="P")
    tiff = (np.arange(20 * 30, dtype=np.uint16).reshape(20, 30) * 6).astype(np.uint16)  # 0..3594 (12-bit data)
    Image.fromarray(tiff).save(root / "train" / "malignant" / "deep.tif")
    return root


def test_class_folders_keep_splits_resize_and_record_steps(run, class_folders, tmp_path):
    out = tmp_path / "out"
    result = run("preprocess", class_folders, "-o", out, "--size", "16", "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["output"] == str(out)
    data = Dataset.open(out)
    data.verify()
    assert data.classes == ["benign", "malignant"]
    assert data.image_size == (16, 16) and data.channels == 1
    counts = data.counts()
    assert counts[("train", "benign", "real")] == 5 and counts[("train", "malignant", "real")] == 5
    assert counts[("test", "benign", "real")] == 2 and counts[("test", "malignant", "real")] == 2
    steps = [s["step"] for s in data.info["preprocess"]["steps"]]
    assert steps == ["intensity", "channels", "resize", "quantise"]
    assert data.info["preprocess"]["splits"] == {"mode": "input", "val_from_train": None}
    # 16-bit TIFF holding 12-bit data: stretched to the full 8-bit range (auto = min-max for deep images).
    deep = next(r for r in data.rows if r["id"].startswith("train-malignant-deep"))
    pixels = decode_png(data.path_of(deep))
    assert pixels.max() > 240 and pixels[2, 0] < 30  # (not 0..14 as a plain >> 8 would give)
    # 20x30 resized into 16x16 keeping the aspect ratio: black bands above and below.
    assert pixels[:2].max() == 0 and pixels[-2:].max() == 0 and pixels[5:11].max() > 0


def test_row_ids_are_stable_and_derived_from_paths(run, class_folders, tmp_path):
    assert run("preprocess", class_folders, "-o", tmp_path / "a", "-q").code == 0
    assert run("preprocess", class_folders, "-o", tmp_path / "b", "-q").code == 0
    assert (tmp_path / "a" / "metadata.csv").read_bytes() == (tmp_path / "b" / "metadata.csv").read_bytes()
    ids = list(rows_by_id(tmp_path / "a"))
    assert all(i.startswith(("train-", "test-")) for i in ids)
    assert any(i.startswith("train-benign-palette-") for i in ids)


def test_workers_give_the_same_rows_in_the_same_order(run, class_folders, tmp_path):
    assert run("preprocess", class_folders, "-o", tmp_path / "one", "--size", "16", "-q").code == 0
    assert run("preprocess", class_folders, "-o", tmp_path / "two", "--size", "16", "--workers", "2", "-q").code == 0
    assert (tmp_path / "one" / "metadata.csv").read_bytes() == (tmp_path / "two" / "metadata.csv").read_bytes()


def test_shards_partition_the_files(run, class_folders, tmp_path):
    ids = []
    for k in (1, 2):
        assert run("preprocess", class_folders, "-o", tmp_path / f"s{k}", "--shard", f"{k}/2", "-q").code == 0
        ids.append(set(rows_by_id(tmp_path / f"s{k}")))
    assert run("preprocess", class_folders, "-o", tmp_path / "all", "-q").code == 0
    assert not ids[0] & ids[1]
    assert ids[0] | ids[1] == set(rows_by_id(tmp_path / "all"))


def test_mode_rgb_and_sixteen_bit(run, class_folders, tmp_path):
    assert run("preprocess", class_folders, "-o", tmp_path / "rgb", "--size", "16", "--mode", "RGB", "-q").code == 0
    assert Dataset.open(tmp_path / "rgb").channels == 3
    assert run("preprocess", class_folders, "-o", tmp_path / "deep", "--mode", "L", "--bit-depth", "16", "-q").code == 0
    data = Dataset.open(tmp_path / "deep")
    assert data.bit_depth == 16
    assert decode_png(data.path_of(data.rows[0])).dtype == np.uint16


def test_bmp_and_colour_make_an_rgb_dataset_in_auto_mode(run, tmp_path):
    grey = gradient(20, 20)
    colour = np.stack([gradient(20, 20), gradient(20, 20, 5), np.zeros((20, 20), np.uint8)], axis=2)
    Image.fromarray(grey).save(write_png(tmp_path / "raw" / "train" / "a" / "g.png", grey).with_suffix(".bmp"))
    (tmp_path / "raw" / "train" / "a" / "g.png").unlink()
    write_png(tmp_path / "raw" / "train" / "b" / "c.png", colour)
    out = tmp_path / "out"
    assert run("preprocess", tmp_path / "raw", "-o", out, "-q").code == 0
    data = Dataset.open(out)
    assert data.channels == 3
    by_label = {r["label"]: decode_png(data.path_of(r)) for r in data.rows}
    assert np.array_equal(by_label["a"], np.repeat(grey[:, :, None], 3, axis=2))  # the BMP, made RGB
    assert np.array_equal(by_label["b"], colour)


def test_crop_to_largest_component_with_margin():
    from synthmed.preprocess.steps import crop_foreground

    image = np.zeros((60, 80), dtype=np.float32)
    image[10:50, 20:60] = 0.8  # the body
    image[2:4, 2:4] = 1.0  # a bright speck (label, marker) that must not widen the crop
    cropped = crop_foreground(image, threshold=None, margin=0.05)
    assert cropped.shape == (44, 44)  # 40 px box + 2 px margin on each side
    assert cropped.min() == 0 and cropped[2:-2, 2:-2].min() == pytest.approx(0.8)


def test_crop_and_denoise_on_the_command_line(run, tmp_path):
    image = np.zeros((64, 64), dtype=np.uint8)
    image[16:48, 8:40] = 200
    image[20, 20] = 0  # a dark speck inside: closing fills it
    image[60, 60] = 255  # a bright speck outside: opening removes it
    write_png(tmp_path / "raw" / "train" / "a" / "x.png", image)
    write_png(tmp_path / "raw" / "train" / "b" / "y.png", image)
    out = tmp_path / "out"
    result = run("preprocess", tmp_path / "raw", "-o", out, "--crop", "--crop-margin", "0", "--opening", "1", "--closing", "1", "-q")
    assert result.code == 0, result.err
    data = Dataset.open(out)
    pixels = decode_png(data.path_of(data.rows[0]))
    assert pixels.shape == (32, 32) and pixels.min() == 200
    steps = [s["step"] for s in data.info["preprocess"]["steps"]]
    assert steps == ["intensity", "channels", "crop_foreground", "grey_opening", "grey_closing", "quantise"]


def test_dicom_windowing_frames_and_no_identifiers(run, tmp_path):
    raw = tmp_path / "raw"
    (raw / "ct").mkdir(parents=True)
    (raw / "mr").mkdir()
    shutil.copy(dicom_file("CT_small.dcm"), raw / "ct" / "scan.dcm")
    mr = pydicom.dcmread(dicom_file("MR_small.dcm"))
    mr.PatientName = "Doe^Jane"
    mr.PatientID = "PID-778899"
    mr.save_as(raw / "mr" / "mr.dcm")
    mr.PhotometricInterpretation = "MONOCHROME1"
    mr.save_as(raw / "mr" / "mr_inverted.dcm")
    out = tmp_path / "out"
    result = run("preprocess", raw, "-o", out, "--split-fractions", "0.5,0.25,0.25", "--size", "32")
    assert result.code == 0, result.err
    data = Dataset.open(out)
    # DICOM rows get opaque ids: file names of DICOM series are often UIDs or patient names.
    by_name = {name: next(r for r in data.rows if r["id"] == row_id(rel, "", opaque=True))
               for name, rel in (("ct", "ct/scan.dcm"), ("mr", "mr/mr.dcm"), ("mr_inverted", "mr/mr_inverted.dcm"))}
    normal = decode_png(data.path_of(by_name["mr"])).astype(int)
    inverted = decode_png(data.path_of(by_name["mr_inverted"])).astype(int)
    # MONOCHROME1 inversion: the same window, bright and dark swapped.
    assert np.abs(normal + inverted - 255).max() <= 1
    # MR_small's own VOI window (600/1600) is applied, not min-max.
    assert 0 < normal.mean() < 255
    # Both MR files belong to one (pseudonymised) patient, so they share a split.
    assert by_name["mr"]["subject"] == by_name["mr_inverted"]["subject"] == by_name["mr"]["subject"]
    assert by_name["mr"]["subject"].startswith("subject-")
    assert by_name["mr"]["split"] == by_name["mr_inverted"]["split"]
    # No DICOM tag value reaches the output folder.
    ct = pydicom.dcmread(dicom_file("CT_small.dcm"))
    secrets = [b"Doe^Jane", b"PID-778899", str(ct.PatientName).encode(), str(ct.PatientID).encode(), str(ct.StudyInstanceUID).encode()]
    for path in out.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            for secret in secrets:
                assert secret not in content, f"{secret!r} found in {path}"


def test_dicom_rescale_and_explicit_window(run, tmp_path):
    raw = tmp_path / "raw" / "train" / "ct"
    raw.mkdir(parents=True)
    shutil.copy(dicom_file("CT_small.dcm"), raw / "ct.dcm")
    out = tmp_path / "out"
    assert run("preprocess", tmp_path / "raw", "-o", out, "--window", "40,400", "-q").code == 0
    data = Dataset.open(out)
    pixels = decode_png(data.path_of(data.rows[0])).astype(int)
    ct = pydicom.dcmread(dicom_file("CT_small.dcm"))
    hounsfield = ct.pixel_array * float(ct.RescaleSlope) + float(ct.RescaleIntercept)
    expected = np.round(np.clip((hounsfield - (40 - 200)) / 400, 0, 1) * 255)  # brain window, -160..240 HU
    assert np.abs(pixels - expected).max() <= 1


def test_dicom_multiframe_gives_one_row_per_frame(run, tmp_path):
    raw = tmp_path / "raw" / "train" / "rgb"
    raw.mkdir(parents=True)
    shutil.copy(dicom_file("SC_rgb_rle_2frame.dcm"), raw / "two.dcm")
    out = tmp_path / "out"
    assert run("preprocess", tmp_path / "raw", "-o", out, "-q").code == 0
    data = Dataset.open(out)
    assert len(data.rows) == 2 and data.channels == 3
    assert sorted(r["id"] for r in data.rows) == sorted([row_id("train/rgb/two.dcm", f"frame-{k:03d}", opaque=True) for k in (0, 1)])
    assert all(r["id"].startswith("dicom-") and r["id"].endswith(("frame-000", "frame-001")) for r in data.rows)


def test_nifti_slices_drop_empty_and_group_by_volume(run, tmp_path):
    raw = tmp_path / "raw"
    (raw / "brain").mkdir(parents=True)
    (raw / "other").mkdir()
    shutil.copy(nifti_file("anatomical.nii"), raw / "brain" / "vol1.nii")
    shutil.copy(nifti_file("anatomical.nii"), raw / "other" / "vol2.nii")
    # An all-black volume with one non-empty slice: only that slice is kept.
    volume = np.zeros((16, 16, 6), dtype=np.int16)
    volume[4:12, 4:12, 3] = 100
    nibabel.save(nibabel.Nifti1Image(volume, np.eye(4)), raw / "other" / "mostly_black.nii.gz")
    out = tmp_path / "out"
    result = run("preprocess", raw, "-o", out, "--size", "32", "--slices", "5:20", "--split-fractions", "0.6,0.2,0.2", "--json")
    assert result.code == 0, result.err
    data = Dataset.open(out)
    by_volume: dict[str, set] = {}
    for row in data.rows:
        by_volume.setdefault(row["subject"], set()).add(row["split"])
    assert set(by_volume) == {"brain/vol1.nii", "other/vol2.nii"}
    assert all(len(splits) == 1 for splits in by_volume.values())  # a volume never spans splits
    # The black volume's only non-empty slice (3) is outside --slices 5:20: nothing usable in it.
    assert "mostly_black.nii.gz,no usable image" in (out / "rejected.csv").read_text()
    assert sum(1 for r in data.rows if r["subject"] == "brain/vol1.nii") == 15
    # Identical volumes in two classes: every slice is an exact duplicate of another class's slice.
    assert json.loads(result.out)["duplicate_groups"] == 15


def test_nifti_4d_needs_volume_index(run, tmp_path):
    raw = tmp_path / "raw" / "fmri"
    raw.mkdir(parents=True)
    shutil.copy(nifti_file("example4d.nii.gz"), raw / "run.nii.gz")
    out = tmp_path / "out"
    assert_usage_error(run("preprocess", tmp_path / "raw", "-o", out, "--split-fractions", "0.8,0.1,0.1"), out, "--volume-index")
    result = run("preprocess", tmp_path / "raw", "-o", out, "--split-fractions", "1,0,0", "--volume-index", "1", "-q")
    assert result.code == 0, result.err
    assert len(Dataset.open(out).rows) > 0


def write_npz(path: Path) -> Path:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 12), ("val", 4), ("test", 4)):
        arrays[f"{split}_images"] = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 3).reshape(n, 1)
    np.savez(path, **arrays)
    return path


def test_npz_keeps_splits_and_names_classes(run, tmp_path):
    npz = write_npz(tmp_path / "tiny.npz")
    out = tmp_path / "out"
    assert run("preprocess", npz, "-o", out, "-q").code == 0
    data = Dataset.open(out)
    assert data.classes == ["0", "1", "2"]
    assert data.counts()[("train", "0", "real")] == 4 and data.counts()[("val", "1", "real")] == 1
    with np.load(npz) as arrays:
        first = next(r for r in data.rows if r["id"].startswith("tiny-train-00000-"))
        assert np.array_equal(decode_png(data.path_of(first)), arrays["train_images"][0])
    # Inside a folder (here "arrays"), the npz's own labels and splits still win over the folder name.
    (tmp_path / "arrays").mkdir()
    npz.rename(tmp_path / "arrays" / "tiny.npz")
    npz = tmp_path / "arrays" / "tiny.npz"
    nested = tmp_path / "nested"
    assert run("preprocess", tmp_path / "arrays", "-o", nested, "-q").code == 0
    assert Dataset.open(nested).classes == ["0", "1", "2"]
    named = tmp_path / "named"
    assert run("preprocess", npz, "-o", named, "--class-names", "normal,benign,malignant", "-q").code == 0
    assert Dataset.open(named).classes == ["normal", "benign", "malignant"]


def test_medmnist_npz(run, tmp_path):
    npz = shared_data("medmnist", "breastmnist.npz")
    out = tmp_path / "out"
    result = run("preprocess", npz, "-o", out, "--class-names", "malignant,normal_or_benign", "--json", "-q")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    with np.load(npz) as arrays:
        expected = {s: np.bincount(arrays[f"{s}_labels"].ravel(), minlength=2) for s in ("train", "val", "test")}
    for split in ("val", "test"):
        assert [summary["counts"][split][c] for c in ("malignant", "normal_or_benign")] == expected[split].tolist()
    # BreastMNIST has one train image identical to a test image: the train copy is dropped.
    assert summary["duplicates_dropped"] >= 1
    assert sum(summary["counts"]["train"].values()) == expected["train"].sum() - summary["duplicates_dropped"]


def chest_subset(tmp_path: Path, per_class: int = 8) -> Path:
    source = shared_data("chest-xray-kermany-224")
    root = tmp_path / "chest"
    for split in ("train", "test"):
        for label in ("NORMAL", "PNEUMONIA"):
            files = sorted((source / split / label).iterdir())
            if label == "PNEUMONIA":
                bacteria = [f for f in files if "bacteria" in f.name][: per_class // 2]
                virus = [f for f in files if "virus" in f.name][: per_class // 2]
                files = bacteria + virus
            for path in files[:per_class]:
                (root / split / label).mkdir(parents=True, exist_ok=True)
                shutil.copy(path, root / split / label / path.name)
    return root


def test_chest_xray_file_name_labels(run, tmp_path):
    root = chest_subset(tmp_path)
    out = tmp_path / "out"
    args = ["preprocess", root, "-o", out, "--size", "32", "--label-regex", "bacteria|virus", "--default-label", "NORMAL",
            "--subject-regex", r"^(person\d+)"]
    # person100 is in train (virus) and in test (bacteria): kept splits would share a subject.
    for split, name in (("train", "person100_virus_184.jpeg"), ("test", "person100_bacteria_475.jpeg")):
        shutil.copy(shared_data("chest-xray-kermany-224", split, "PNEUMONIA", name), root / split / "PNEUMONIA" / name)
    result = run(*args)
    assert_usage_error(result, out, "share a subject", "--subjects-per-split")
    # In this data set the ids restart in each split folder.
    result = run(*args, "--subjects-per-split", "--val-fraction", "0.25", "--json")
    assert result.code == 0, result.err
    data = Dataset.open(out)
    assert data.classes == ["NORMAL", "bacteria", "virus"]
    assert data.channels == 1  # the 224 px RGB JPEGs are grey
    counts = data.counts()
    assert counts[("train", "bacteria", "real")] + counts[("val", "bacteria", "real")] == 4
    assert counts[("train", "virus", "real")] + counts[("val", "virus", "real")] == 5
    assert counts[("test", "bacteria", "real")] == 4  # person100_bacteria_475 was in the subset already
    assert sum(counts[("val", c, "real")] for c in data.classes) >= 3
    assert counts[("test", "NORMAL", "real")] == 8
    subjects = {r["subject"] for r in data.rows if r["label"] != "NORMAL"}
    assert all(s.startswith(("train-person", "test-person")) for s in subjects)


def test_chest_xray_generated_splits_group_subjects(run, tmp_path):
    root = chest_subset(tmp_path, per_class=12)
    out = tmp_path / "out"
    result = run(
        "preprocess", root, "-o", out, "--size", "32", "--label-regex", "bacteria|virus", "--default-label", "NORMAL",
        "--subject-regex", r"^(person\d+|IM-\d+|NORMAL2-IM-\d+)", "--split-fractions", "0.6,0.2,0.2", "--seed", "3", "-q",
    )
    assert result.code == 0, result.err
    data = Dataset.open(out)
    splits_of: dict[str, set] = {}
    for row in data.rows:
        splits_of.setdefault(row["subject"], set()).add(row["split"])
    assert all(len(s) == 1 for s in splits_of.values())
    assert {r["split"] for r in data.rows} == {"train", "val", "test"}


def test_assign_splits_is_stratified_grouped_and_seeded():
    from synthmed.preprocess.splits import Item, assign_splits

    items = [Item(f"a{i}", "a", f"da{i}", f"s{i // 2}", None) for i in range(40)]  # 20 subjects of 2 images
    items += [Item(f"b{i}", "b", f"db{i}", None, None) for i in range(10)]
    items.append(Item("dup", "b", "db3", None, None))  # identical pixels to b3: same split
    split_of = assign_splits(items, (0.8, 0.1, 0.1), seed=1)
    for label, total in (("a", 40), ("b", 11)):
        counts = {s: sum(1 for it in items if it.label == label and split_of[it.id] == s) for s in ("train", "val", "test")}
        assert counts["val"] >= 1 and counts["test"] >= 1
        assert abs(counts["train"] - 0.8 * total) <= 2
    assert all(split_of[f"a{2 * k}"] == split_of[f"a{2 * k + 1}"] for k in range(20))
    assert split_of["dup"] == split_of["b3"]
    assert assign_splits(items, (0.8, 0.1, 0.1), seed=1) == split_of
    assert assign_splits(items, (0.8, 0.1, 0.1), seed=2) != split_of


def test_duplicates_across_splits_keep_the_held_out_copy(run, tmp_path):
    raw = tmp_path / "raw"
    for split in ("train", "test"):
        for i in range(3):
            write_png(raw / split / "a" / f"{split}{i}.png", gradient(offset=i + (10 if split == "test" else 0)))
    write_png(raw / "train" / "a" / "copy_of_test0.png", gradient(offset=10))
    write_png(raw / "train" / "a" / "copy_of_train1.png", gradient(offset=1))
    out = tmp_path / "out"
    result = run("preprocess", raw, "-o", out, "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["duplicate_groups"] == 2 and summary["duplicates_dropped"] == 1
    ids = set(rows_by_id(out))
    assert not any(i.startswith("train-a-copy_of_test0") for i in ids)
    assert any(i.startswith("train-a-copy_of_train1") for i in ids)  # same split: reported, kept
    with open(out / "duplicates.csv", newline="") as handle:
        report = list(csv.DictReader(handle))
    assert len(report) == 4
    assert sum(1 for r in report if r["kept"].startswith("no")) == 1


def test_val_fraction_carves_val_out_of_train(run, class_folders, tmp_path):
    out = tmp_path / "out"
    result = run("preprocess", class_folders, "-o", out, "--val-fraction", "0.4", "--json", "-q")
    assert result.code == 0, result.err
    counts = json.loads(result.out)["counts"]
    assert counts["val"] == {"benign": 2, "malignant": 2}
    assert counts["train"] == {"benign": 3, "malignant": 3}
    assert counts["test"] == {"benign": 2, "malignant": 2}  # the input's test split is untouched


def test_labels_csv_with_subjects(run, tmp_path):
    raw = tmp_path / "raw"
    lines = ["file,label,subject"]
    for i in range(12):
        write_png(raw / f"img{i}.png", gradient(offset=i))
        lines.append(f"img{i}.png,{'sick' if i % 2 else 'well'},p{i // 4}")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    result = run("preprocess", raw, "-o", out, "--labels-csv", tmp_path / "labels.csv", "--split-fractions", "0.5,0.25,0.25", "-q")
    assert result.code == 0, result.err
    data = Dataset.open(out)
    assert data.classes == ["sick", "well"]
    for subject in ("p0", "p1", "p2"):
        assert len({r["split"] for r in data.rows if r["subject"] == subject}) == 1


# --------------------------------------------------------------------------- bad input


def bad_files(folder: Path) -> dict[str, str]:
    """Unusable files of every kind, with the words their rejection reason must contain."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image\n")
    (folder / "garbage.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    buffer = (folder / "whole.jpg")
    Image.fromarray(gradient(64, 64)).save(buffer, quality=90)
    (folder / "truncated.jpg").write_bytes(buffer.read_bytes()[:400])
    buffer.unlink()
    # A PNG header claiming 20000 x 20000 pixels (400 MP): Pillow's bomb guard must refuse it.
    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    (folder / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))
    shutil.copy(dicom_file("rtplan.dcm"), folder / "plan.dcm")
    return {
        "empty.png": "empty file",
        "notes.txt": "not an image file",
        "garbage.jpg": "unreadable",
        "truncated.jpg": "truncated",
        "bomb.png": "decompression bomb",
        "plan.dcm": "without pixel data",
    }


def test_unusable_files_are_listed_in_rejected_csv(run, class_folders, tmp_path):
    expected = bad_files(class_folders / "train" / "benign")
    out = tmp_path / "out"
    result = run("preprocess", class_folders, "-o", out, "-q")
    assert result.code == 0, result.err
    with open(out / "rejected.csv", newline="") as handle:
        reasons = {Path(r["source"]).name: r["reason"] for r in csv.DictReader(handle)}
    assert set(reasons) == set(expected)
    for name, words in expected.items():
        assert words in reasons[name], (name, reasons[name])
    assert len(Dataset.open(out).rows) == 14


def test_strict_stops_at_the_first_unusable_file(run, class_folders, tmp_path):
    bad_files(class_folders / "train" / "benign")
    out = tmp_path / "out"
    assert_usage_error(run("preprocess", class_folders, "-o", out, "--strict"), out, "--strict")


@pytest.mark.parametrize("name", ["empty.png", "garbage.jpg", "truncated.jpg", "bomb.png", "plan.dcm", "notes.txt"])
def test_nothing_usable_is_an_error(run, tmp_path, name):
    bad_files(tmp_path / "all")
    raw = tmp_path / "raw" / "train" / "x"
    raw.mkdir(parents=True)
    shutil.copy(tmp_path / "all" / name, raw / name)
    out = tmp_path / "out"
    assert_usage_error(run("preprocess", tmp_path / "raw", "-o", out), out, "nothing usable", name)


def test_bad_input_errors(run, class_folders, tmp_path):
    out = tmp_path / "out"
    # Labels missing: a file outside any class folder.
    write_png(class_folders / "stray.png", gradient())
    assert_usage_error(run("preprocess", class_folders, "-o", out, "--split-fractions", "0.8,0.1,0.1"), out, "labels missing", "stray.png")
    (class_folders / "stray.png").unlink()
    # A class with no images left: its only file is corrupt.
    (class_folders / "train" / "cyst").mkdir()
    (class_folders / "train" / "cyst" / "c.png").write_bytes(b"broken")
    assert_usage_error(run("preprocess", class_folders, "-o", out), out, "'cyst'", "no images left")
    shutil.rmtree(class_folders / "train" / "cyst")
    # --classes naming a class that does not exist.
    assert_usage_error(run("preprocess", class_folders, "-o", out, "--classes", "benign,tumour"), out, "'tumour'")
    # Conflicting options.
    assert_usage_error(run("preprocess", class_folders, "-o", out, "--bit-depth", "16", "--mode", "RGB"), out, "--bit-depth")
    assert_usage_error(run("preprocess", class_folders, "-o", out, "--split-fractions", "0.9,0.2,0.1"), out, "--split-fractions")
    assert_usage_error(run("preprocess", class_folders, "-o", out, "--size", "0"), out, "--size")
    # Files without a split folder and no --split-fractions.
    flat = tmp_path / "flat" / "a"
    write_png(flat / "x.png", gradient())
    assert_usage_error(run("preprocess", tmp_path / "flat", "-o", out), out, "--split-fractions")


def test_input_splits_sharing_a_subject_are_refused(run, tmp_path):
    raw = tmp_path / "raw"
    lines = ["file,label,subject,split"]
    for i, split in enumerate(("train", "train", "test", "test")):
        write_png(raw / f"img{i}.png", gradient(offset=i))
        lines.append(f"img{i}.png,x,{'p1' if i in (1, 2) else f'q{i}'},{split}")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    result = run("preprocess", raw, "-o", out, "--labels-csv", tmp_path / "labels.csv")
    assert_usage_error(result, out, "share a subject", "'p1'", "--split-fractions")


def test_output_inside_the_input_is_refused(run, class_folders):
    out = class_folders / "processed"
    before = sorted(class_folders.rglob("*"))
    result = run("preprocess", class_folders, "-o", out, "-q")
    assert result.code == 2 and "lies inside the input" in result.err
    assert sorted(class_folders.rglob("*")) == before


def test_existing_output_is_refused_before_reading(run, class_folders, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    result = run("preprocess", class_folders, "-o", out)
    assert result.code == 2 and "--overwrite" in result.err and "reading" not in result.err


def test_labels_csv_naming_missing_files(run, tmp_path):
    raw = tmp_path / "raw"
    write_png(raw / "a.png", gradient())
    (tmp_path / "labels.csv").write_text("file,label\na.png,x\nmissing.png,y\n")
    out = tmp_path / "out"
    assert_usage_error(
        run("preprocess", raw, "-o", out, "--labels-csv", tmp_path / "labels.csv", "--split-fractions", "1,0,0"), out, "missing.png", "does not exist"
    )


def test_reader_plugin_can_add_a_format(run, tmp_path):
    from synthmed.hookspecs import hookimpl
    from synthmed.data.imageio import RawImage
    from synthmed.plugins import get_plugin_manager

    class TextImages:
        @hookimpl
        def read_image(self, path):
            if path.suffix != ".txt":
                return None
            return [RawImage(np.loadtxt(path, dtype=np.float32))]

    raw = tmp_path / "raw" / "train" / "t"
    raw.mkdir(parents=True)
    np.savetxt(raw / "ramp.txt", np.arange(64, dtype=np.float32).reshape(8, 8))
    pm = get_plugin_manager()
    pm.register(TextImages(), name="text-images")
    try:
        result = run("preprocess", tmp_path / "raw", "-o", tmp_path / "out", "-q")
    finally:
        pm.unregister(name="text-images")
    assert result.code == 0, result.err
    data = Dataset.open(tmp_path / "out")
    pixels = decode_png(data.path_of(data.rows[0]))
    assert pixels[0, 0] == 0 and pixels[-1, -1] == 255


def test_old_spelling_split_makes_the_same_splits_with_one_warning(run, class_folders, tmp_path):
    new = run("preprocess", class_folders, "-o", tmp_path / "new", "--split-fractions", "0.5,0.25,0.25", "--size", "16", "-q")
    assert new.code == 0, new.err
    leakage = new.err.splitlines()
    assert [line.split(":")[2] for line in leakage] == [" split by image"]  # no subject ids (tests/preprocess/test_subjects.py)
    old = run("preprocess", class_folders, "-o", tmp_path / "old", "--split", "0.5,0.25,0.25", "--size", "16", "-q")
    assert old.code == 0, old.err
    assert old.err.splitlines() == ["synthmed: warning: preprocess --split is deprecated; use --split-fractions "
                                    "TRAIN,VAL,TEST (the old spelling goes in the next release)", *leakage]
    assert (tmp_path / "old" / "metadata.csv").read_bytes() == (tmp_path / "new" / "metadata.csv").read_bytes()


def test_old_spelling_split_in_its_new_meaning_or_with_the_new_one_is_refused(run, class_folders, tmp_path):
    out = tmp_path / "out"
    # `--split NAME` now names one split, which preprocess does not take.
    assert_usage_error(run("preprocess", class_folders, "-o", out, "--split", "train"), out,
                       "--split train: --split now means one split", "--split-fractions TRAIN,VAL,TEST")
    assert_usage_error(run("preprocess", class_folders, "-o", out, "--split", "0.8,0.1,0.1", "--split-fractions", "0.8,0.1,0.1"),
                       out, "--split and --split-fractions", "give only --split-fractions")


def test_a_file_name_that_is_not_utf8_is_kept_with_escaped_bytes(run, tmp_path):
    import os

    rng = np.random.default_rng(0)
    for label in ("A", "B"):
        (tmp_path / "raw" / label).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (20, 20), dtype=np.uint8)).save(tmp_path / "raw" / label / f"{i}.png")
    os.rename(os.fsencode(tmp_path / "raw" / "A" / "0.png"), os.fsencode(tmp_path / "raw" / "A") + b"/\xff\xfe.png")
    result = run("preprocess", tmp_path / "raw", "-o", tmp_path / "out", "--size", 16, "--split-fractions", "0.5,0.25,0.25", "-q")
    assert result.code == 0, result.err
    ids = [row["id"] for row in Dataset.open(tmp_path / "out").rows]
    assert len(ids) == 8 and any(i.startswith("A-xff-xfe-") for i in ids)


def test_decoder_warnings_are_one_synthmed_line_even_with_quiet(tmp_path):
    # pydicom reads a value outside the standard with a Python warning: two raw stderr lines
    # (file path and source line) per file before; one summary line now.
    raw = tmp_path / "raw" / "train" / "ct"
    raw.mkdir(parents=True)
    shutil.copy(dicom_file("badVR.dcm"), raw / "bad.dcm")
    shutil.copy(dicom_file("CT_small.dcm"), raw / "ct.dcm")
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHONWARNINGS")}
    result = subprocess.run([sys.executable, "-m", "synthmed", "preprocess", str(tmp_path / "raw"), "-o", str(out), "-q"],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [line for line in lines if line.startswith("synthmed: warning: ")], result.stderr
    decoder = [line for line in lines if "gave decoder warnings" in line]
    assert len(decoder) == 1 and "1 file(s)" in decoder[0] and "ct/bad.dcm" in decoder[0] and "'1A'" in decoder[0]
    assert "UserWarning" not in result.stderr
    assert (out / "rejected.csv").is_file()

"""Splits without subject ids: the loud warning, the record in dataset.json, the guessed regex."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import shared_data
from synthmed.data import Dataset
from synthmed.preprocess.subjects import suggest_subject_regex


def test_the_guess_finds_patient_prefixes_and_nothing_in_unique_names():
    names = ["train/PNEUMONIA/person1_bacteria_1.jpeg", "train/PNEUMONIA/person1_virus_6.jpeg",
             "train/PNEUMONIA/person22_bacteria_3.jpeg", "train/NORMAL/IM-0115-0001.jpeg",
             "train/NORMAL/IM-0117-0001.jpeg", "train/NORMAL/NORMAL2-IM-0955-0001.jpeg",
             "train/NORMAL/NORMAL2-IM-0956-0001.jpeg"]
    guess = suggest_subject_regex(names)
    assert guess is not None and guess.subjects == 6 and guess.files == 7
    pattern = re.compile(guess.regex)
    found = [pattern.search(name.rsplit("/", 1)[-1]).group(1) for name in names]
    assert found == ["person1", "person1", "person22", "IM-0115", "IM-0117", "NORMAL2-IM-0955", "NORMAL2-IM-0956"]
    assert suggest_subject_regex([f"sub-{s:02d}_slice-{i:03d}.png" for s in range(3) for i in range(9)]).regex == r"^(sub-\d+)"
    assert suggest_subject_regex([f"img_{i:04d}.png" for i in range(30)]) is None  # one image per name
    assert suggest_subject_regex([f"case{i}_a.png" for i in range(30)]) is None  # prefixes never repeat


def patients(root: Path, count: int = 12, views: int = 3, seed: int = 0) -> Path:
    """Class folders of tiny images named like Kermany's, `views` images per patient."""
    rng = np.random.default_rng(seed)
    for p in range(count):
        label = "sick" if p % 2 else "well"
        for v in range(views):
            path = root / label / f"person{p}_{label}_{v}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(path)
    return root


def test_a_split_by_image_warns_records_and_suggests_the_regex(run, tmp_path):
    raw = patients(tmp_path / "raw")
    result = run("preprocess", raw, "-o", tmp_path / "by-image", "--split-fractions", "0.6,0.2,0.2", "-q")
    assert result.code == 0, result.err
    warning = [line for line in result.err.splitlines() if line.startswith("synthmed: warning: split by image")]
    assert len(warning) == 1, result.err  # shown even with --quiet: it is about the result
    assert "may sit in train and test" in warning[0] and r"--subject-regex '^(person\d+)'" in warning[0]
    assert "12 subjects in 36 files" in warning[0]
    recorded = Dataset.open(tmp_path / "by-image").info["subject_grouping"]
    assert recorded["grouped_by_subject"] is False and recorded["images_without_subject"] == 36
    assert recorded["warning"] == warning[0].removeprefix("synthmed: warning: ")
    info = run("info", tmp_path / "by-image", "--json")
    assert json.loads(info.out)["subject_grouping"]["grouped_by_subject"] is False
    assert "split by image" in run("info", tmp_path / "by-image").out

    grouped = run("preprocess", raw, "-o", tmp_path / "grouped", "--split-fractions", "0.6,0.2,0.2", "-q",
                  "--subject-regex", r"^(person\d+)")
    assert grouped.code == 0 and grouped.err == "", grouped.err
    data = Dataset.open(tmp_path / "grouped")
    assert data.info["subject_grouping"] == {"grouped_by_subject": True, "subjects": 12, "images_without_subject": 0,
                                             "warning": None}
    assert "grouped by subject (12 subjects;" in run("info", tmp_path / "grouped").out


def test_kept_input_splits_without_subjects_warn_too(run, tmp_path):
    raw = tmp_path / "raw"
    for seed, split in enumerate(("train", "test")):
        patients(raw / split, count=4, views=1, seed=seed)
    result = run("preprocess", raw, "-o", tmp_path / "out", "-q")
    assert result.code == 0
    assert "synthmed: warning: the input's splits are kept as given: no image has a subject id" in result.err
    patients(tmp_path / "only" / "train", count=4, views=1)
    single = run("preprocess", tmp_path / "only", "-o", tmp_path / "one", "-q")  # one split: nothing to leak across
    assert single.code == 0 and single.err == ""


def test_chest_xrays_split_by_image_put_patients_in_two_splits_and_the_guess_fixes_it(run, tmp_path):
    source = shared_data("chest-xray-kermany-224", "train", "PNEUMONIA")
    root = tmp_path / "chest" / "PNEUMONIA"
    root.mkdir(parents=True)
    by_patient: dict[str, list[Path]] = {}
    for path in sorted(source.iterdir()):
        by_patient.setdefault(path.name.split("_")[0], []).append(path)
    chosen = [p for p, files in sorted(by_patient.items()) if len(files) >= 3][:20]
    for patient in chosen:
        for path in by_patient[patient]:
            shutil.copy(path, root / path.name)
    args = ["preprocess", tmp_path / "chest", "--size", "16", "--label-regex", "bacteria|virus",
            "--split-fractions", "0.6,0.2,0.2", "-q"]
    plain = run(*args, "-o", tmp_path / "plain")
    assert plain.code == 0, plain.err
    suggested = re.search(r"--subject-regex '([^']+)'", plain.err).group(1)
    rows = Dataset.open(tmp_path / "plain").rows
    splits_of: dict[str, set[str]] = {}
    for row in rows:
        splits_of.setdefault(row["file_name"].rsplit("/", 1)[-1].split("_")[0], set()).add(row["split"])
    assert sum(len(s) > 1 for s in splits_of.values()) > 0  # what the warning is about
    fixed = run(*args, "-o", tmp_path / "fixed", "--subject-regex", suggested)
    assert fixed.code == 0 and fixed.err == "", fixed.err
    subjects: dict[str, set[str]] = {}
    for row in Dataset.open(tmp_path / "fixed").rows:
        subjects.setdefault(row["subject"], set()).add(row["split"])
    assert len(subjects) == len(chosen) and all(len(s) == 1 for s in subjects.values())

"""The val-split warnings of a study, and selective augmentation chosen on val only."""

from __future__ import annotations

import json

from study_helpers import TINY_TRAIN, one_error_line, read_results, write_study
from training_helpers import derive_dataset

BODY = """repeats = 2

[sources.flips]
augment = "hflip"

[axes]
synthetic = [0.3]
synthetic_classes = [["MildDemented"]]
""" + TINY_TRAIN


def _warnings(study_path, dataset):
    from synthmed.data import Dataset
    from synthmed.study.schema import load_study
    from synthmed.study.validate import check_study

    return check_study(load_study(study_path), Dataset.open(dataset))


def test_no_warning_for_a_val_split_by_subject(tiny_dataset, tmp_path):
    assert _warnings(write_study(tmp_path, tiny_dataset, BODY), tiny_dataset) == []


def test_a_val_split_without_subject_ids_is_warned_about(run, tiny_dataset, tmp_path):
    blank = derive_dataset(tiny_dataset, tmp_path / "blank",
                           lambda row: {**row, "subject": ""} if row["split"] == "val" else row)
    study = write_study(tmp_path, blank, BODY)
    (warning,) = _warnings(study, blank)
    assert "no subject id" in warning and "optimistic" in warning
    result = run("study", study, "-o", tmp_path / "out", "--dry-run")
    assert result.code == 0, result.err
    assert "warning:" in result.err and "may share patients" in result.err


def test_a_val_split_carved_by_image_is_warned_about(tiny_dataset, tmp_path):
    carved = derive_dataset(tiny_dataset, tmp_path / "carved",
                            lambda row: None if row["split"] == "val" else {**row, "subject": ""})
    study = write_study(tmp_path, carved, BODY + "val_fraction = 0.2\n")
    (warning,) = _warnings(study, carved)
    assert "carved from train by image" in warning and "optimistic" in warning


def test_a_val_split_sharing_subjects_with_train_is_refused(run, tiny_dataset, tmp_path):
    from synthmed.data import Dataset

    train_subject = Dataset.open(tiny_dataset).select("train")[0]["subject"]
    shared = derive_dataset(tiny_dataset, tmp_path / "shared",
                            lambda row: {**row, "subject": train_subject} if row["split"] == "val" else row)
    line = one_error_line(run("study", write_study(tmp_path, shared, BODY), "-o", tmp_path / "out"))
    assert "shares subject" in line and "val split" in line and not (tmp_path / "out").exists()


def test_selective_augmentation_chooses_on_val_and_reports_on_test(run, tiny_dataset, tmp_path):
    body = BODY.replace('synthetic_classes = [["MildDemented"]]', 'synthetic_classes = ["all"]')
    body += '\n[selective]\ncandidates = ["MildDemented", "ModerateDemented"]\n'
    out = tmp_path / "out"
    result = run("study", write_study(tmp_path, tiny_dataset, body), "-o", out, "--json", "--quiet")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    selective = summary["selective"]
    assert selective["candidates"] == ["MildDemented", "ModerateDemented"] and selective["split"] == "val"
    # A class is kept exactly when its probe's median paired val difference favours it.
    expected = [c for c, e in selective["evidence"].items() if e["median_difference"] is not None
                and e["median_difference"] < 0]
    assert selective["chosen"] == expected
    rows = read_results(out)
    probes = {r["synthetic_classes"] for r in rows if r["role"] == "probe"}
    assert probes == {"MildDemented", "ModerateDemented"}
    # The choice never sees the test split: probes are scored on val only.
    assert {r["split"] for r in rows if r["role"] == "probe"} == {"val", "training"}
    chosen_rows = [r for r in rows if r["role"] == "selective"]
    if expected:
        assert {r["synthetic_classes"] for r in chosen_rows} == {",".join(expected)}
        assert {r["split"] for r in chosen_rows} == {"test", "training"}
        assert any(v["label"].endswith(f"[{', '.join(expected)}]") for v in summary["verdicts"].values())
    else:
        assert not chosen_rows and "no class improved" in (out / "report.md").read_text()

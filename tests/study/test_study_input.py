"""`synthmed study`: every bad input is a one-line error naming the key and line, exit 2,
nothing written."""

from __future__ import annotations

import pytest

from study_helpers import TINY_TRAIN, one_error_line, write_study

GOOD = """repeats = 2
split = "test"

[sources.flips]
augment = "hflip"

[axes]
real = [1.0]
synthetic = [0, 0.2]
synthetic_classes = [["MildDemented"]]
classifier = ["cnn-basic"]
""" + TINY_TRAIN


def _refused(run, study, tmp_path, *fragments, args=()):
    out = tmp_path / "out"
    line = one_error_line(run("study", study, "-o", out, *args))
    for fragment in fragments:
        assert fragment in line, line
    assert not out.exists() and not any(p.name.startswith(".out") for p in tmp_path.iterdir())
    return line


# (replace this, with this, fragments of the error); GOOD's line 1 is the dataset line.
CASES = [
    ("repeats = 2\n", "repeats = 2\ncolour = 1\n", ("line 3", "colour: unknown key")),
    ("repeats = 2\n", "repeats = 0\n", ("line 2", "repeats: 0 must be at least 1")),
    ("repeats = 2\n", 'repeats = "five"\n', ("line 2", "repeats: expected a whole number")),
    ('split = "test"\n', 'split = "train"\n', ("line 3", "split", "use test or val")),
    ("real = [1.0]\n", "real = [1.5]\n", ("line 9", "axes.real[0]", "between 0 and 1")),
    ("real = [1.0]\n", "real = [1.0]\nsize = [32]\n", ("line 10", "axes.size: unknown key")),
    ('synthetic_classes = [["MildDemented"]]', 'synthetic_classes = [["Mild"]]', ("line 11", "no class 'Mild'")),
    ('synthetic_classes = [["MildDemented"]]', 'synthetic_classes = ["MildDemented"]', ("line 11", '"all" or a list')),
    ("synthetic = [0, 0.2]", 'synthetic = [0, "Unknown=5"]', ("line 10", "axes.synthetic[1]", "unknown class")),
    ('classifier = ["cnn-basic"]', 'classifier = ["no-such-net"]', ("line 12", "unknown classifier 'no-such-net'")),
    ('[axes]', '[axes]\naugment = ["no-such-policy"]', ("line 9", "axes.augment[0]", "no-such-policy")),
    ('augment = "hflip"', 'augment = "hflip"\nfit_epochs = 3', ("line 7", "sources.flips.fit_epochs", "takes no")),
    ('augment = "hflip"', 'generator = "no-such-gan"', ("line 6", "sources.flips.generator", "no-such-gan")),
    ('augment = "hflip"', 'augment = "hflip"\npatience = 3', ("line 7", "sources.flips.patience", "generator sources")),
    ('augment = "hflip"', 'generator = "dcgan"\nselect_by = "kid"', ("line 6", "sources.flips.generator", "'kid'")),
    ('augment = "hflip"', 'generator = "dcgan"\ncheck_every = 0', ("line 7", "sources.flips.check_every", "at least 1")),
    ("epochs = 1", "epoch = 1", ("train.epoch: unknown key",)),
    ("epochs = 1", "epochs = 0", ("train", "--epochs 0")),
    ("batch_size = 32", 'batch_size = "32"', ("train.batch_size", "expected a whole number")),
    ("repeats = 2\n", "repeats = 2\n[[[\n", ("not valid TOML", "line 3")),
]


@pytest.mark.parametrize("old, new, fragments", CASES, ids=[c[2][-1][:30] for c in CASES])
def test_bad_input_is_one_line_naming_the_key(run, sample_dataset, tmp_path, old, new, fragments):
    assert old in GOOD
    study = write_study(tmp_path, sample_dataset, GOOD.replace(old, new, 1))
    _refused(run, study, tmp_path, *fragments)


def test_a_synthetic_folder_of_another_size(run, sample_dataset, tmp_path):
    from mix.test_mix import make_synthetic

    small = make_synthetic(tmp_path / "small", sample_dataset, per_origin=1, generators=("g@1",), size=(16, 16))
    body = GOOD.replace('augment = "hflip"', f'path = "{small}"')
    _refused(run, write_study(tmp_path, sample_dataset, body), tmp_path, "line 6", "sources.flips.path", "16x16")


def test_a_dataset_with_a_class_the_study_names_missing_and_no_val(run, sample_dataset, tmp_path):
    from training_helpers import derive_dataset

    no_val = derive_dataset(sample_dataset, tmp_path / "noval", lambda row: None if row["split"] == "val" else row)
    _refused(run, write_study(tmp_path, no_val, GOOD), tmp_path, "train.val_fraction", "no val split")
    carved = GOOD.replace('split = "test"', 'split = "val"') + "val_fraction = 0.2\n"
    _refused(run, write_study(tmp_path, no_val, carved), tmp_path, "split", "would not share one")


def test_selective_cannot_be_scored_on_val(run, sample_dataset, tmp_path):
    body = GOOD.replace('split = "test"', 'split = "val"') + "\n[selective]\n"
    _refused(run, write_study(tmp_path, sample_dataset, body), tmp_path, "selective", "scored on test")


def test_quick_without_a_quick_table(run, sample_dataset, tmp_path):
    _refused(run, write_study(tmp_path, sample_dataset, GOOD), tmp_path, "[quick]", args=("--quick",))


def test_a_missing_study_file(run, tmp_path):
    _refused(run, tmp_path / "nope.toml", tmp_path, "no such study file")


def test_an_output_that_is_not_a_study(run, sample_dataset, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    line = one_error_line(run("study", write_study(tmp_path, sample_dataset, GOOD), "-o", out))
    assert "not a study output" in line and sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_a_source_that_cannot_be_fitted_is_refused_before_output(run, sample_dataset, tmp_path):
    from training_helpers import derive_dataset

    kept = []

    def few_moderate(row):
        if row["split"] == "train" and row["label"] == "ModerateDemented":
            kept.append(row["id"])
            return row if len(kept) <= 1 else None
        return row

    few = derive_dataset(sample_dataset, tmp_path / "few", few_moderate)
    body = GOOD.replace('augment = "hflip"', 'generator = "acgan"').replace(
        '[["MildDemented"]]', '[["ModerateDemented"]]')
    _refused(run, write_study(tmp_path, few, body), tmp_path, "sources.flips.generator", "no images", "round to 0")
    body = body.replace("synthetic = [0, 0.2]", "synthetic = [0, 1.0]")  # 1 image of the one kept
    _refused(run, write_study(tmp_path, few, body), tmp_path, "sources.flips.generator", "ModerateDemented",
             "at least")

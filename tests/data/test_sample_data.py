"""The embedded sample dataset: deterministic, split by subject, learnable but not trivial."""

from __future__ import annotations


from synthmed.data import Dataset, find_leaks
from synthmed.data.sample import CLASSES, class_counts, write_sample_dataset


def test_class_counts_follow_the_thesis_proportions():
    assert class_counts(1.0) == [2566, 1781, 724, 49]
    assert class_counts(0.1) == [257, 178, 72, 12]  # minimum: one subject per split


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = write_sample_dataset(tmp_path / "a", size=16, scale=0.01, seed=3)
    b = write_sample_dataset(tmp_path / "b", size=16, scale=0.01, seed=3)
    c = write_sample_dataset(tmp_path / "c", size=16, scale=0.01, seed=4)
    assert (a / "metadata.csv").read_bytes() == (b / "metadata.csv").read_bytes()
    assert (a / "metadata.csv").read_bytes() != (c / "metadata.csv").read_bytes()


def test_splits_are_by_subject_and_hold_every_class(sample_dataset):
    data = Dataset.open(sample_dataset)
    data.verify()
    assert data.classes == list(CLASSES)
    assert find_leaks(data.rows) == []
    for split in ("train", "val", "test"):
        assert {r["label"] for r in data.select(split=split)} == set(CLASSES)
    subjects = {}
    for row in data.rows:
        assert subjects.setdefault(row["subject"], row["split"]) == row["split"]
    assert len(data.select(split="train")) > 2 * len(data.select(split="test"))


def test_learnable_but_not_trivial(tmp_path):
    """A linear model on pixels beats chance clearly but does not solve the minority class."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score, recall_score

    data = Dataset.open(write_sample_dataset(tmp_path / "d", size=32, scale=0.2, seed=1))

    def xy(split):
        rows = data.select(split=split)
        return data.load_images(rows).reshape(len(rows), -1) / 255.0, data.label_indices(rows)

    (x_train, y_train), (x_test, y_test) = xy("train"), xy("test")
    model = LogisticRegression(max_iter=3000, C=0.1).fit(x_train, y_train)
    predicted = model.predict(x_test)
    balanced = balanced_accuracy_score(y_test, predicted)
    minority_recall = recall_score(y_test, predicted, labels=[3], average=None)[0]
    assert balanced > 0.25 + 0.1, balanced
    assert minority_recall < 1.0 or balanced < 0.95
    # Severity shows in the pixels: class means differ in the ventricle region.
    images = data.load_images(data.select(split="train")).astype(float)
    labels = data.label_indices(data.select(split="train"))
    centre = images[:, 0, 12:20, 10:22].mean(axis=(1, 2))
    assert centre[labels == 0].mean() > centre[labels == 2].mean()

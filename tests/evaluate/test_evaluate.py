"""`synthmed evaluate` and `synthmed compare`: metrics (metrics.json, summarised over repeats), reports, bad input."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch

from training_helpers import derive_dataset, no_outputs


@pytest.fixture(scope="module")
def trained(sample_dataset, tmp_path_factory):
    """(single run, run with 2 repeats) trained for 2 epochs on the sample dataset."""
    from synthmed.train.settings import TrainSettings
    from synthmed.train.run import train_run

    root = tmp_path_factory.mktemp("runs")
    settings = TrainSettings(epochs=2)
    train_run(sample_dataset, root / "single", settings, device=torch.device("cpu"))
    train_run(sample_dataset, root / "repeats", settings, repeats=2, device=torch.device("cpu"))
    return root / "single", root / "repeats"


def test_metrics_match_hand_computed_values():
    from synthmed.evaluate.metrics import classification_metrics

    labels = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 1, 0, 2])
    logits = np.full((6, 3), -2.0)
    logits[np.arange(6), predicted] = 2.0
    scores = classification_metrics(logits, labels, 3)
    assert scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert scores["per_class"]["precision"] == pytest.approx([2 / 3, 1 / 2, 1])
    assert scores["per_class"]["recall"] == pytest.approx([2 / 3, 1 / 2, 1])
    assert scores["macro_f1"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert scores["confusion"].tolist() == [[2, 1, 0], [1, 1, 0], [0, 0, 1]]
    p_true = np.exp(2) / (np.exp(2) + 2 * np.exp(-2))
    p_other = np.exp(-2) / (np.exp(2) + 2 * np.exp(-2))
    assert scores["cross_entropy"] == pytest.approx(-(4 * np.log(p_true) + 2 * np.log(p_other)) / 6, rel=1e-5)
    # Class 2 is perfectly separated; AUROC is one-vs-rest averaged over classes.
    assert 0.5 < scores["auroc_macro"] <= 1


def test_expected_calibration_error_of_constructed_predictions():
    """Top-class confidence 0.9 (2 images, 1 right), 0.6 (wrong) and 0.7 (right): each bin's
    |confidence - accuracy| weighted by its share, (0.4 * 2 + 0.6 + 0.3) / 4 = 0.425."""
    from synthmed.evaluate.metrics import classification_metrics

    probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.3, 0.7]])
    scores = classification_metrics(np.log(probabilities), np.array([0, 1, 1, 1]), 2)
    assert scores["ece"] == pytest.approx(0.425, abs=1e-6)
    perfect = classification_metrics(np.log(np.array([[1 - 1e-9, 1e-9], [1e-9, 1 - 1e-9]])), np.array([0, 1]), 2)
    assert perfect["ece"] == pytest.approx(0.0, abs=1e-6)


def test_summary_is_median_and_quartiles():
    from synthmed.evaluate.metrics import summarize

    stat = summarize([0.1, 0.4, 0.2, 0.3])
    assert stat["values"] == [0.1, 0.4, 0.2, 0.3]
    assert (stat["median"], stat["q1"], stat["q3"]) == pytest.approx((0.25, 0.175, 0.325))
    assert summarize([None])["median"] is None


def test_evaluate_writes_the_report_of_contract_2(run, trained, sample_dataset, tmp_path):
    from synthmed.data import Dataset
    from synthmed.evaluate.metrics import METRICS

    single, _ = trained
    out = tmp_path / "report"
    result = run("evaluate", single, sample_dataset, "-o", out, "--device", "cpu", "--json")
    assert result.code == 0, result.err
    printed = json.loads(result.out)
    report = json.loads((out / "metrics.json").read_text())
    assert printed == {"output": str(out), **report}
    data = Dataset.open(sample_dataset)
    test = data.select("test")
    assert report["split"] == "test" and report["classes"] == data.classes and report["repeats"] == 1
    assert set(report["summary"]) == set(METRICS)
    for stat in report["summary"].values():
        assert set(stat) == {"median", "q1", "q3", "n", "values"} and len(stat["values"]) == 1
    assert set(report["per_class"]) == set(data.classes)
    assert set(report["per_class"]["NonDemented"]) == {"precision", "recall", "f1"}
    # The report agrees with its own predictions and confusion matrix.
    with open(out / "predictions.csv") as handle:
        predictions = list(csv.DictReader(handle))
    assert [p["id"] for p in predictions] == [r["id"] for r in test]
    accuracy = np.mean([p["label"] == p["predicted"] for p in predictions])
    assert report["summary"]["accuracy"]["median"] == pytest.approx(accuracy)
    with open(out / "confusion_matrix.csv") as handle:
        matrix = np.array([row[1:] for row in list(csv.reader(handle))[1:]], dtype=int)
    assert matrix.sum() == len(test) and np.trace(matrix) == round(accuracy * len(test))
    assert (out / "confusion_matrix.png").stat().st_size > 1000
    assert "accuracy" in run("evaluate", single, sample_dataset, "-o", tmp_path / "r2", "--device", "cpu").err


def test_repeats_give_median_and_iqr(run, trained, sample_dataset, tmp_path):
    _, repeats = trained
    out = tmp_path / "report"
    result = run("evaluate", repeats, sample_dataset, "-o", out, "--split", "val", "--device", "cpu", "--quiet")
    assert result.code == 0, result.err and result.err == ""
    report = json.loads((out / "metrics.json").read_text())
    assert report["repeats"] == 2 and report["split"] == "val"
    loss = report["summary"]["cross_entropy"]
    assert len(loss["values"]) == 2 and loss["median"] == pytest.approx(np.mean(loss["values"]))
    assert loss["q1"] <= loss["median"] <= loss["q3"]
    # Each repeat's val loss is the best val loss recorded at training time.
    recorded = [json.loads((repeats / f"run-0{i}" / "config.json").read_text())["training"]["best_val_loss"]
                for i in (1, 2)]
    assert loss["values"] == pytest.approx(recorded, rel=1e-4)
    with open(out / "predictions.csv") as handle:
        assert {row["run"] for row in csv.DictReader(handle)} == {"run-01", "run-02"}


def test_compare_prints_one_row_per_report(run, trained, sample_dataset, tmp_path):
    single, repeats = trained
    for name, source in (("real", single), ("mixed", repeats)):
        assert run("evaluate", source, sample_dataset, "-o", tmp_path / name, "--device", "cpu", "-q").code == 0
    result = run("compare", tmp_path / "real", tmp_path / "mixed", "--json")
    assert result.code == 0, result.err
    rows = json.loads(result.out)
    assert [r["report"] for r in rows] == ["real", "mixed"] and rows[1]["repeats"] == "2"
    accuracy = json.loads((tmp_path / "real" / "metrics.json").read_text())["summary"]["accuracy"]["median"]
    assert rows[0]["accuracy"] == f"{accuracy:.3f}"
    assert "f1 ModerateDemented" in rows[0]  # the minority class by train count
    table = run("compare", tmp_path / "real", tmp_path / "mixed")
    assert "mixed" in table.out and "balanced_accuracy" in table.out
    bad = run("compare", sample_dataset)
    assert bad.code == 2 and "not an evaluation report" in bad.err


# --------------------------------------------------------------------------- bad input


def _refused(result, out, *words):
    assert result.code == 2, result.err
    assert result.err.startswith("synthmed: error: ") and result.err.count("\n") == 1, result.err
    for word in words:
        assert word in result.err, result.err
    assert no_outputs(out)


def test_a_dataset_is_not_a_run(run, sample_dataset, tmp_path):
    out = tmp_path / "report"
    _refused(run("evaluate", sample_dataset, sample_dataset, "-o", out), out, "not a training run")


def test_a_model_folder_of_another_kind(run, trained, sample_dataset, tmp_path):
    single, _ = trained
    other = tmp_path / "generator"
    shutil.copytree(single, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "kind": "generator"}))
    out = tmp_path / "report"
    _refused(run("evaluate", other, sample_dataset, "-o", out), out, "not a classifier")


def test_a_classifier_nothing_registers(run, trained, sample_dataset, tmp_path):
    single, _ = trained
    other = tmp_path / "plugin-run"
    shutil.copytree(single, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "name": "uninstalled-net"}))
    out = tmp_path / "report"
    _refused(run("evaluate", other, sample_dataset, "-o", out), out, "uninstalled-net", "cnn-basic")


def test_classes_that_differ_from_the_dataset(run, trained, sample_dataset, tmp_path):
    single, _ = trained
    renamed = derive_dataset(
        sample_dataset, tmp_path / "renamed",
        lambda r: {**r, "label": "Moderate" if r["label"] == "ModerateDemented" else r["label"]},
        classes=["NonDemented", "VeryMildDemented", "MildDemented", "Moderate"],
    )
    out = tmp_path / "report"
    _refused(run("evaluate", single, renamed, "-o", out), out, "trained on classes", "Moderate")


def test_a_dataset_of_another_image_size(run, trained, tmp_path):
    from synthmed.data.sample import write_sample_dataset

    single, _ = trained
    data = write_sample_dataset(tmp_path / "d20", size=20, scale=0.01, seed=0)
    out = tmp_path / "report"
    _refused(run("evaluate", single, data, "-o", out), out, "[32, 32]", "preprocess")


def test_corrupt_weights(run, trained, sample_dataset, tmp_path):
    single, _ = trained
    broken = tmp_path / "broken"
    shutil.copytree(single, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    out = tmp_path / "report"
    _refused(run("evaluate", broken, sample_dataset, "-o", out), out, "model.safetensors", "corrupt")


def test_an_unknown_split_or_a_bad_batch_size(run, trained, sample_dataset, tmp_path):
    single, _ = trained
    out = tmp_path / "report"
    _refused(run("evaluate", single, sample_dataset, "-o", out, "--split", "holdout"), out, "--split")
    _refused(run("evaluate", single, sample_dataset, "-o", out, "--batch-size", "0"), out, "--batch-size 0")
    only_train = derive_dataset(sample_dataset, tmp_path / "train-only", lambda r: r if r["split"] == "train" else None)
    _refused(run("evaluate", single, only_train, "-o", out), out, "test split is empty")

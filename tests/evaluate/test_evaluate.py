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
    assert set(report["per_class"]["NonDemented"]) == {"precision", "recall", "f1", "auroc", "average_precision"}
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
    assert_figure(out / "roc_pr.png")
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


def assert_figure(path, *, min_side=300):
    """A PNG that was really drawn: big enough and not one flat colour."""
    from PIL import Image

    image = np.asarray(Image.open(path).convert("L"))
    assert min(image.shape) >= min_side and image.std() > 10, (path, image.shape, image.std())


def test_roc_and_pr_curves_are_the_median_over_repeats(trained, sample_dataset, tmp_path):
    from synthmed.evaluate.curves import GRID, class_curves
    from synthmed.evaluate.job import evaluate

    labels = np.array([0, 0, 1, 1])
    perfect = class_curves(np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.2, 0.8]]), labels, ["a", "b"])
    assert perfect["b"]["auroc"] == 1.0 and perfect["b"]["average_precision"] == 1.0
    assert perfect["b"]["tpr"][0] == 1.0 and len(perfect["b"]["tpr"]) == len(GRID)
    assert min(perfect["b"]["precision"]) == 1.0
    _, repeats = trained
    result = evaluate(repeats, sample_dataset, tmp_path / "report", device="cpu")
    assert len(result.curves) == 2  # one set of curves per repeat
    auroc = result.report["per_class"]["NonDemented"]["auroc"]
    assert auroc["n"] == 2 and auroc["median"] == pytest.approx(np.median([c["NonDemented"]["auroc"] for c in result.curves]))
    assert_figure(tmp_path / "report" / "roc_pr.png")


def test_train_support_is_what_the_run_was_trained_on(run, trained, sample_dataset, tmp_path):
    from synthmed.data import Dataset

    single, _ = trained
    minority_cut = derive_dataset(sample_dataset, tmp_path / "fewer", lambda r: None if (
        r["split"] == "train" and r["label"] == "NonDemented" and r["id"][-1] in "02468") else r)
    assert run("train", minority_cut, "-o", tmp_path / "run", "--epochs", "1", "--device", "cpu", "-q").code == 0
    result = run("evaluate", tmp_path / "run", sample_dataset, "-o", tmp_path / "report", "--device", "cpu", "-q", "--json")
    report = json.loads(result.out)
    trained_on = Dataset.open(minority_cut)
    assert report["train_support"] == {c: len(trained_on.select("train", labels=[c])) for c in trained_on.classes}
    full = Dataset.open(sample_dataset)
    assert report["train_support"]["NonDemented"] < len(full.select("train", labels=["NonDemented"]))


def test_compare_prints_numbers_under_stable_keys(run, trained, sample_dataset, tmp_path):
    single, repeats = trained
    for name, source in (("real", single), ("mixed", repeats)):
        assert run("evaluate", source, sample_dataset, "-o", tmp_path / name, "--device", "cpu", "-q").code == 0
    result = run("compare", tmp_path / "real", tmp_path / "mixed", "--json", "--plot", tmp_path / "repeats.png")
    assert result.code == 0, result.err
    printed = json.loads(result.out)
    assert printed["output"] is None and printed["same_images"] is True and printed["warnings"] == []
    assert [r["report"] for r in printed["reports"]] == ["real", "mixed"]
    assert [r["repeats"] for r in printed["reports"]] == [1, 2]
    saved = json.loads((tmp_path / "real" / "metrics.json").read_text())
    accuracy = printed["reports"][0]["metrics"]["accuracy"]
    assert {k: accuracy[k] for k in ("median", "q1", "q3", "n")} == {k: saved["summary"]["accuracy"][k] for k in ("median", "q1", "q3", "n")}
    assert printed["minority_class"] == "ModerateDemented"  # fewest train images, named in a field
    assert printed["reports"][1]["minority_f1"]["n"] == 2
    assert_figure(tmp_path / "repeats.png")
    table = run("compare", tmp_path / "real", tmp_path / "mixed")
    assert "mixed" in table.out and "balanced_accuracy" in table.out and "minority class ModerateDemented" in table.out
    bad = run("compare", sample_dataset)
    assert bad.code == 2 and "not an evaluation report" in bad.err
    named = json.loads(run("compare", tmp_path / "real", "--minority", "MildDemented", "--json").out)
    assert named["minority_class"] == "MildDemented" and named["minority_from"] == "given"
    assert run("compare", tmp_path / "real", "--minority", "Healthy").code == 2


def test_compare_refuses_reports_on_different_images(run, trained, sample_dataset, tmp_path):
    single, _ = trained
    fewer = derive_dataset(sample_dataset, tmp_path / "fewer", lambda r: None if (
        r["split"] == "test" and r["id"].endswith("1")) else r)
    assert run("evaluate", single, sample_dataset, "-o", tmp_path / "a", "--device", "cpu", "-q").code == 0
    assert run("evaluate", single, fewer, "-o", tmp_path / "b", "--device", "cpu", "-q").code == 0
    refused = run("compare", tmp_path / "a", tmp_path / "b")
    assert refused.code == 2 and refused.out == "", refused.err
    assert refused.err.startswith("synthmed: error: reports scored different images: a (test split") and refused.err.count("\n") == 1
    allowed = run("compare", tmp_path / "a", tmp_path / "b", "--allow-different-images", "--json")
    assert allowed.code == 0 and "synthmed: warning: reports scored different images" in allowed.err
    assert json.loads(allowed.out)["same_images"] is False
    old = tmp_path / "old"
    shutil.copytree(tmp_path / "a", old)
    record = json.loads((old / "metrics.json").read_text())
    del record["split_digest"]
    (old / "metrics.json").write_text(json.dumps(record))
    unknown = run("compare", tmp_path / "a", old, "--json")
    assert unknown.code == 0 and "cannot check" in unknown.err and json.loads(unknown.out)["same_images"] is None


def test_compare_table_fits_80_columns_without_cutting_names(trained, sample_dataset, tmp_path):
    from rich.console import Console

    from synthmed.cli.compare import comparison_tables
    from synthmed.evaluate.compare import compare_reports
    from synthmed.evaluate.job import evaluate

    single, repeats = trained
    names = ["real-only-baseline", "real-plus-20pct-acgan", "real-plus-70pct-acgan", "flips"]
    for name in names:
        evaluate(repeats if "acgan" in name else single, sample_dataset, tmp_path / name, device="cpu")
    comparison = compare_reports([tmp_path / n for n in names])
    console = Console(width=80, record=True, file=open(tmp_path / "out.txt", "w"))
    for table in comparison_tables(comparison, 80):
        console.print(table)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text
    for name in names:
        assert name in text
    assert text.count("f1 ModerateDemented") == len(comparison_tables(comparison, 80)) >= 2  # split, not squeezed


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

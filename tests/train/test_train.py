"""`synthmed train`: the RUN folder it writes (model.safetensors + config.json), reproducibility, repeats, options and bad input."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from training_helpers import derive_dataset, no_outputs

FAST = ("--epochs", "1", "--batch-size", "32", "--device", "cpu", "--quiet")


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_train_writes_a_classifier_folder_of_contract_1(run, sample_dataset, tmp_path):
    from synthmed.checkpoint import load_classifier
    from synthmed.data import Dataset
    from synthmed.batches import model_input

    out = tmp_path / "run"
    result = run("train", sample_dataset, "-o", out, "--epochs", "2", "--device", "cpu", "--quiet")
    assert result.code == 0, result.err
    assert result.out == f"{out}\n"
    assert {p.name for p in out.iterdir()} >= {"model.safetensors", "config.json", "history.csv", "curves.png",
                                               "provenance.json"}
    config = json.loads((out / "config.json").read_text())
    data = Dataset.open(sample_dataset)
    assert config["kind"] == "classifier" and config["name"] == "cnn-basic"
    assert config["args"] == {"num_classes": 4, "in_channels": 1, "image_size": [32, 32]}
    assert config["classes"] == data.classes and config["image_size"] == [32, 32] and config["channels"] == 1
    assert config["normalization"] == {"mean": data.stats["mean"], "std": data.stats["std"]}
    with open(out / "history.csv") as handle:
        history = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in history] == [1, 2]
    best = min(history, key=lambda r: float(r["val_loss"]))
    assert config["training"]["best_epoch"] == int(best["epoch"])
    # Anyone can load it and reproduce the best epoch's val loss from the stored weights.
    module, loaded = load_classifier(out)
    val = data.select("val")
    with torch.no_grad():
        logits = module(model_input(data.load_images(val), loaded["normalization"]))
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(data.label_indices(val)))
    assert loss.item() == pytest.approx(float(best["val_loss"]), rel=1e-4)


def test_same_seed_same_weights_and_repeats_get_distinct_seeds(run, sample_dataset, tmp_path):
    assert run("train", sample_dataset, "-o", tmp_path / "a", *FAST, "--seed", "3").code == 0
    assert run("train", sample_dataset, "-o", tmp_path / "b", *FAST, "--seed", "3").code == 0
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)

    result = run("train", sample_dataset, "-o", tmp_path / "r", *FAST, "--seed", "3", "--repeats", "2", "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["output"] == str(tmp_path / "r") and summary["repeats"] == 2
    folders = sorted(p.name for p in (tmp_path / "r").iterdir() if p.is_dir())
    assert folders == ["run-01", "run-02"]
    seeds = [json.loads((tmp_path / "r" / f / "config.json").read_text())["training"]["seed"] for f in folders]
    assert seeds[0] != seeds[1]
    # run-01 of a repeated run is the single run with the same --seed; run-02 differs.
    first, second = _weights(tmp_path / "r" / "run-01"), _weights(tmp_path / "r" / "run-02")
    assert all(torch.equal(a[k], first[k]) for k in a)
    assert not all(torch.equal(a[k], second[k]) for k in a)
    assert (tmp_path / "r" / "runs.csv").read_text().count("\n") == 3


def test_a_repeated_run_draws_the_curves_of_every_repeat_and_records_its_train_counts(sample_dataset, tmp_path):
    from PIL import Image

    from synthmed.data import Dataset
    from synthmed.train.run import train_run
    from synthmed.train.settings import TrainSettings

    train_run(sample_dataset, tmp_path / "r", TrainSettings(epochs=2), repeats=3, device=torch.device("cpu"))
    combined = np.asarray(Image.open(tmp_path / "r" / "curves.png").convert("L"))
    assert min(combined.shape) > 300 and combined.std() > 10
    single = np.asarray(Image.open(tmp_path / "r" / "run-01" / "curves.png").convert("L"))
    assert combined.shape != single.shape or not np.array_equal(combined, single)
    data = Dataset.open(sample_dataset)
    counts = json.loads((tmp_path / "r" / "run-02" / "config.json").read_text())["training"]["train_counts"]
    assert counts == {c: len(data.select("train", labels=[c])) for c in data.classes}


def test_early_stopping_keeps_the_best_epoch(sample_dataset, tmp_path):
    from synthmed.train.settings import TrainSettings
    from synthmed.train.run import train_run

    # A learning rate this high makes the val loss rise after the first epochs.
    settings = TrainSettings(epochs=12, lr=0.05, patience=2, batch_size=16)
    summary = train_run(sample_dataset, tmp_path / "run", settings, device=torch.device("cpu"))
    (only,) = summary["runs"]
    assert only["epochs_run"] < 12
    assert only["epochs_run"] == only["best_epoch"] + 2
    with open(tmp_path / "run" / "history.csv") as handle:
        losses = [float(r["val_loss"]) for r in csv.DictReader(handle)]
    assert min(losses) == pytest.approx(only["val_loss"], rel=1e-5) and losses.index(min(losses)) + 1 == only["best_epoch"]


def test_max_steps_is_a_budget_in_optimizer_steps(run, sample_dataset, tmp_path):
    from synthmed.data import Dataset

    n_train = len(Dataset.open(sample_dataset).select("train"))
    per_epoch = n_train // 16 + (n_train % 16 >= 2)  # a last batch of one image is skipped (batch norm)
    budget = per_epoch + 3  # ends 3 steps into the second epoch
    out = tmp_path / "r"
    result = run("train", sample_dataset, "-o", out, "--epochs", "20", "--patience", "20", "--batch-size", "16",
                 "--max-steps", budget, "--repeats", "2", "--device", "cpu", "--json")
    assert result.code == 0, result.err
    runs = json.loads(result.out)["runs"]
    assert [r["steps"] for r in runs] == [budget, budget] and [r["epochs_run"] for r in runs] == [2, 2]
    with open(out / "run-01" / "history.csv") as handle:
        assert [int(r["steps"]) for r in csv.DictReader(handle)] == [per_epoch, budget]
    config = json.loads((out / "run-01" / "config.json").read_text())
    assert config["training"]["steps"] == budget and config["training"]["max_steps"] == budget
    with open(out / "runs.csv") as handle:
        assert [int(r["steps"]) for r in csv.DictReader(handle)] == [budget, budget]
    # Early stopping still ends a run before the budget.
    early = json.loads(run("train", sample_dataset, "-o", tmp_path / "e", "--epochs", "20", "--patience", "1",
                           "--lr", "0.05", "--batch-size", "16", "--max-steps", 10_000, "--device", "cpu",
                           "--json").out)["runs"][0]
    assert early["epochs_run"] < 20 and early["steps"] < 10_000


def test_class_weights_are_inverse_frequency():
    from synthmed.train.data import class_weights

    weights = class_weights(torch.tensor([0, 0, 0, 1]), 3)
    assert weights.tolist() == pytest.approx([4 / 9, 4 / 3, 4 / 3])


def test_class_weights_change_training(run, sample_dataset, tmp_path):
    assert run("train", sample_dataset, "-o", tmp_path / "a", *FAST).code == 0
    assert run("train", sample_dataset, "-o", tmp_path / "b", *FAST, "--class-weights").code == 0
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert not all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((tmp_path / "b" / "config.json").read_text())["training"]["class_weights"] is True


def test_augment_policy_is_applied_to_unit_range_train_batches(run, sample_dataset, tmp_path):
    from synthmed import hookimpl
    from synthmed.plugins import get_plugin_manager

    seen = []

    def factory():
        def policy(x):
            seen.append((tuple(x.shape), float(x.min()), float(x.max()), x.dtype))
            return torch.flip(x, dims=[3])

        return policy

    class Plugin:
        @hookimpl
        def register_augmentations(self, register):
            register("test-flip", factory)

    pm = get_plugin_manager()
    pm.register(Plugin(), name="test-flip-plugin")
    try:
        result = run("train", sample_dataset, "-o", tmp_path / "run", *FAST, "--augment", "test-flip")
    finally:
        pm.unregister(name="test-flip-plugin")
    assert result.code == 0, result.err
    train_images = json.loads((tmp_path / "run" / "config.json").read_text())["training"]["train_images"]
    assert sum(shape[0] for shape, *_ in seen) == train_images  # every train image, once per epoch, no val
    assert all(shape[1:] == (1, 32, 32) and low >= 0 and high <= 1 and dtype == torch.float32
               for shape, low, high, dtype in seen)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["training"]["augment"] == "test-flip"


def test_freeze_backbone_with_local_weights(run, sample_dataset, tmp_path):
    from synthmed.registry import create_classifier

    torch.manual_seed(0)
    pretrained = create_classifier("cnn-bn", num_classes=7, in_channels=3, image_size=[32, 32])
    torch.save(pretrained.state_dict(), tmp_path / "pre.pth")
    result = run("train", sample_dataset, "-o", tmp_path / "run", *FAST, "--classifier", "cnn-bn",
                 "--weights", tmp_path / "pre.pth", "--freeze-backbone", "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["trainable_parameters"] == sum(p.numel() for p in pretrained.classifier.parameters()) - 7 * 129 + 4 * 129
    trained = _weights(tmp_path / "run")
    # Backbone: the RGB kernels summed for gray input, the rest unchanged, batch norm statistics included.
    assert torch.allclose(trained["features.0.weight"], pretrained.features[0].weight.sum(1, keepdim=True))
    assert torch.equal(trained["features.5.running_mean"], pretrained.features[5].running_mean)


def test_val_fraction_carves_a_val_split_by_subject(run, sample_dataset, tmp_path):
    from synthmed.data import Dataset
    from synthmed.train.data import split_train_val

    no_val = derive_dataset(sample_dataset, tmp_path / "noval", lambda r: None if r["split"] == "val" else r)
    out = tmp_path / "run"
    result = run("train", no_val, "-o", out, *FAST)
    assert result.code == 2 and no_outputs(out)
    assert result.err.startswith("synthmed: error: ") and "--val-fraction" in result.err and result.err.count("\n") == 1

    data = Dataset.open(no_val)
    train, val, notes = split_train_val(data, val_fraction=0.2, seed=0)
    subjects = {label: {r["subject"] for r in data.select("train", labels=[label])} for label in data.classes}
    assert {r["label"] for r in val} == {label for label in data.classes if len(subjects[label]) >= 2}
    assert any("no val images for ModerateDemented" in note for note in notes)
    assert not {r["subject"] for r in train} & {r["subject"] for r in val}
    assert len(train) + len(val) == len(data.select("train"))
    assert 0.1 < len(val) / len(data.select("train")) < 0.35
    result = run("train", no_val, "-o", out, *FAST, "--val-fraction", "0.2")
    assert result.code == 0, result.err
    assert json.loads((out / "config.json").read_text())["training"]["val_images"] == len(val)


# --------------------------------------------------------------------------- bad input


def _refused(result, out, *words):
    assert result.code == 2, result.err
    assert result.err.startswith("synthmed: error: ") and result.err.count("\n") == 1, result.err
    for word in words:
        assert word in result.err, result.err
    assert no_outputs(out)


def test_leakage_is_refused_before_training(run, sample_dataset, tmp_path):
    from synthmed.data import Dataset

    test_id = Dataset.open(sample_dataset).select("test")[0]["id"]
    first_train = Dataset.open(sample_dataset).select("train")[0]["id"]

    def leak(row):
        if row["id"] == first_train:
            row.update(source="synthetic", origin=test_id)
        return row

    leaky = derive_dataset(sample_dataset, tmp_path / "leaky", leak)
    _refused(run("train", leaky, "-o", tmp_path / "run", *FAST), tmp_path / "run", "leakage", test_id)


def test_class_missing_from_train(run, sample_dataset, tmp_path):
    missing = derive_dataset(sample_dataset, tmp_path / "missing",
                             lambda r: None if r["split"] == "train" and r["label"] == "ModerateDemented" else r)
    _refused(run("train", missing, "-o", tmp_path / "run", *FAST), tmp_path / "run", "ModerateDemented", "no train images")


def test_image_size_the_model_cannot_take(run, tmp_path):
    from synthmed.data.sample import write_sample_dataset

    data = write_sample_dataset(tmp_path / "d20", size=20, scale=0.01, seed=0)
    _refused(run("train", data, "-o", tmp_path / "run", *FAST, "--classifier", "vit-b-16"), tmp_path / "run",
             "20x20", "multiples of 16")
    # The old spelling still names the same classifier, with one warning line before the error.
    old = run("train", data, "-o", tmp_path / "run", *FAST, "--classifier", "vit_b_16")
    warning, error = old.err.splitlines()
    assert warning == ("synthmed: warning: classifier 'vit_b_16' is deprecated; use 'vit-b-16' "
                       "(the old name goes in the next release)")
    assert old.code == 2 and "classifier 'vit-b-16' needs sides that are multiples of 16" in error


@pytest.mark.parametrize("args, words", [
    (("--repeats", "0"), ("--repeats",)),
    (("--classifier", "no-such-net"), ("no-such-net", "cnn-basic")),
    (("--val-fraction", "0.2"), ("already has a val split",)),
    (("--weights", "missing.pth"), ("--weights", "no such file")),
    (("--classifier-arg", "nonsense"), ("--classifier-arg",)),
    (("--classifier-arg", "depth=3"), ("--classifier-arg", "cnn-basic")),
    (("--amp", "bf16"), ("--amp",)),
    (("--augment", "no-such-policy"), ("no-such-policy",)),
    (("--epochs", "0"), ("--epochs",)),
    (("--max-steps", "0"), ("--max-steps",)),
])
def test_bad_options(run, sample_dataset, tmp_path, args, words):
    _refused(run("train", sample_dataset, "-o", tmp_path / "run", *FAST, *args), tmp_path / "run", *words)


def test_weights_for_another_architecture(run, sample_dataset, tmp_path):
    from synthmed.registry import create_classifier

    torch.save(create_classifier("resnet18", num_classes=4, in_channels=1, image_size=[32, 32]).state_dict(),
               tmp_path / "r.pth")
    _refused(run("train", sample_dataset, "-o", tmp_path / "run", *FAST, "--weights", tmp_path / "r.pth"),
             tmp_path / "run", "another architecture")


def test_existing_output_needs_overwrite(run, sample_dataset, tmp_path):
    out = tmp_path / "run"
    assert run("train", sample_dataset, "-o", out, *FAST).code == 0
    before = (out / "model.safetensors").read_bytes()
    result = run("train", sample_dataset, "-o", out, *FAST)
    assert result.code == 2 and "--overwrite" in result.err
    assert (out / "model.safetensors").read_bytes() == before
    assert run("train", sample_dataset, "-o", out, *FAST, "--overwrite", "--seed", "1").code == 0
    assert (out / "model.safetensors").read_bytes() != before


def test_classifier_args_are_recorded_and_rebuild_the_model(run, sample_dataset, tmp_path):
    from synthmed.checkpoint import load_classifier

    result = run("train", sample_dataset, "-o", tmp_path / "run", *FAST, "--classifier-arg", "hidden=[32, 16]",
                 "--classifier-arg", "conv_channels=[8, 16]")
    assert result.code == 0, result.err
    module, config = load_classifier(tmp_path / "run")
    assert config["args"]["hidden"] == [32, 16] and config["args"]["conv_channels"] == [8, 16]
    assert [m.out_features for m in module.modules() if isinstance(m, torch.nn.Linear)] == [32, 16, 4]


def test_rgb_images_are_learned(run, tmp_path):
    import numpy as np

    from synthmed.data import DatasetWriter

    rng = np.random.default_rng(0)
    with DatasetWriter(tmp_path / "rgb", classes=["red", "blue"], command="test") as writer:
        for split, count in (("train", 40), ("val", 10), ("test", 10)):
            for i in range(count):
                label = ("red", "blue")[i % 2]
                pixels = rng.integers(0, 120, size=(16, 16, 3), dtype=np.uint8)
                pixels[..., 0 if label == "red" else 2] += 120
                writer.add_image(pixels, id=f"{split}-{i}", label=label, split=split)
    result = run("train", tmp_path / "rgb", "-o", tmp_path / "run", "--epochs", "5", "--batch-size", "8",
                 "--device", "cpu", "-q")
    assert result.code == 0, result.err
    assert json.loads((tmp_path / "run" / "config.json").read_text())["channels"] == 3
    report = run("evaluate", tmp_path / "run", tmp_path / "rgb", "-o", tmp_path / "report", "--device", "cpu",
                 "-q", "--json")
    assert json.loads(report.out)["summary"]["accuracy"]["median"] == 1.0


def test_old_spelling_model_trains_the_same_classifier_with_one_warning(run, sample_dataset, tmp_path):
    new = run("train", sample_dataset, "-o", tmp_path / "new", *FAST, "--classifier", "cnn-bn", "--classifier-arg", "dropout=0.1")
    assert new.code == 0 and new.err == "", new.err
    old = run("train", sample_dataset, "-o", tmp_path / "old", *FAST, "-m", "cnn-bn", "--model-arg", "dropout=0.1")
    assert old.code == 0, old.err
    assert old.err.splitlines() == [
        "synthmed: warning: train --model is deprecated; use --classifier NAME (the old spelling goes in the next release)",
        "synthmed: warning: train --model-arg is deprecated; use --classifier-arg (the old spelling goes in the next release)",
    ]
    assert json.loads((tmp_path / "old" / "config.json").read_text())["name"] == "cnn-bn"
    assert _weights(tmp_path / "old").keys() == _weights(tmp_path / "new").keys()
    assert all(torch.equal(_weights(tmp_path / "old")[k], _weights(tmp_path / "new")[k]) for k in _weights(tmp_path / "new"))


@pytest.mark.parametrize("args, words", [
    (("--model", "cnn-bn", "--classifier", "cnn-basic"), ("--model and --classifier", "give only --classifier")),
    (("--model-arg", "dropout=0.1", "--classifier-arg", "dropout=0.2"), ("--model-arg and --classifier-arg",)),
    (("--model", "FOLDER"), ("--model now means a fitted model folder", "train does not take", "--classifier NAME")),
])
def test_old_spelling_model_refused_with_the_new_name(run, sample_dataset, tmp_path, args, words):
    (tmp_path / "FOLDER").mkdir()
    args = tuple(str(tmp_path / a) if a == "FOLDER" else a for a in args)
    _refused(run("train", sample_dataset, "-o", tmp_path / "run", *FAST, *args), tmp_path / "run", *words)


def test_a_one_class_dataset_is_refused(run, tmp_path):
    import numpy as np

    from synthmed.data import DatasetWriter

    rng = np.random.default_rng(0)
    with DatasetWriter(tmp_path / "one", classes=["a"], command="test") as writer:
        for i in range(9):
            writer.add_image(rng.integers(0, 256, (16, 16), dtype=np.uint8), id=f"i{i}", label="a",
                             split=("train", "val", "test")[i % 3])
    result = run("train", tmp_path / "one", "-o", tmp_path / "run", "-c", "cnn-basic", "--epochs", 1, "-q")
    assert result.code == 2 and "a classifier needs at least two" in result.err
    assert not (tmp_path / "run").exists()


def test_cpu_fit_runs_convolutions_channels_last_and_hands_back_a_dense_module(sample_dataset, tmp_path):
    """The layout is a CPU speed-up only: inside the fit the conv weights are channels-last, and
    the module that comes back (and every saved state) is dense again."""
    from synthmed.registry import get_entry
    from synthmed.train.loop import build_classifier, fit
    from synthmed.data import Dataset
    from synthmed.train.data import load_training_data, split_train_val
    from synthmed.train.settings import TrainSettings

    dataset = Dataset.open(sample_dataset)
    train, val, notes = split_train_val(dataset, val_fraction=None, seed=0)
    data = load_training_data(dataset, train, val, torch.device("cpu"), notes)
    settings = TrainSettings(classifier="cnn-basic", epochs=1, batch_size=32)
    module, _ = build_classifier(get_entry("classifier", "cnn-basic"), data, settings)
    # the last conv: with one input channel the two layouts have the same strides
    conv = [m for m in module.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    layouts = []
    conv.register_forward_pre_hook(
        lambda layer, _: layouts.append(layer.weight.is_contiguous(memory_format=torch.channels_last)))
    fit(module, data, settings, seed=0, device=torch.device("cpu"), head="classifier", state_dir=tmp_path / "state")
    assert layouts and all(layouts)
    assert all(p.is_contiguous() for p in module.parameters())
    from safetensors.torch import load_file

    saved = load_file(str(next((tmp_path / "state").glob("*.safetensors"))))
    assert all(t.is_contiguous() for t in saved.values())

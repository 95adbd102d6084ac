"""synthmed gradcam: layer choice, maps against the definition, outputs, pairs, bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from gradcam_models import BUILDERS, PLUGIN_NAME, TestClassifiers, save_run

from synthmed.data import Dataset, DatasetWriter, partial_path


@pytest.fixture(autouse=True)
def test_classifiers():
    from synthmed.plugins import get_plugin_manager

    pm = get_plugin_manager()
    pm.register(TestClassifiers, name=PLUGIN_NAME)
    try:
        yield
    finally:
        pm.unregister(name=PLUGIN_NAME)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, sample_dataset) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    return {name: save_run(root / name, name, sample_dataset) for name in BUILDERS}


@pytest.fixture(scope="module")
def pairs_dataset(tmp_path_factory, sample_dataset) -> Path:
    """6 train reals per class; synthetic images of the first 2: exact copies for NonDemented
    (their maps must equal the origin's), noisy copies for the other classes."""
    source = Dataset.open(sample_dataset)
    out = tmp_path_factory.mktemp("pairs") / "data"
    with DatasetWriter(out, classes=source.classes, command="test") as writer:
        for label in source.classes:
            reals = source.select("train", "real", [label])[:6]
            pixels = source.load_images(reals)
            for k, row in enumerate(reals):
                writer.add_file(source.path_of(row), row)
                if k < 2:
                    rng = np.random.default_rng(k)
                    image = pixels[k, 0]
                    if label != "NonDemented":
                        image = np.clip(image.astype(int) + rng.integers(-40, 40, image.shape), 0, 255).astype(np.uint8)
                    writer.add_image(
                        image, id=f"{row['id']}--test-000", label=label, split="train", source="synthetic",
                        origin=row["id"], generator="test@1", seed=k,
                    )  # fmt: skip
    return out


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def assert_usage_error(result, out: Path, *words: str) -> None:
    assert result.code == 2, result.err
    lines = result.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("synthmed: error: "), result.err
    for word in words:
        assert word in lines[0], lines[0]
    assert result.out == ""
    assert not out.exists() and not partial_path(out).exists()


# --------------------------------------------------------------------------- maps and layers


def load(run: Path):
    from synthmed.checkpoint import load_classifier

    return load_classifier(run)


def test_gradcam_matches_the_definition(runs, sample_dataset):
    """Gradients of the class score averaged per channel, weighted sum of the activations,
    ReLU, upsampled (bilinear) and scaled to [0, 1]: computed here by hand."""
    import torch
    import torch.nn.functional as F

    from synthmed.batches import model_input
    from synthmed.gradcam.cam import CamExtractor, choose_layer, find_layers

    model, config = load(runs["tiny-cnn"])
    dataset = Dataset.open(sample_dataset)
    x = model_input(dataset.load_images(dataset.select("test")[:5]), config["normalization"])
    layer = choose_layer(find_layers(model, channels=1, image_size=(32, 32)))
    assert layer.name == "features" and layer.grid == (8, 8)
    classes = [0, 1, 2, 3, 1]

    captured = {}
    handle = model.features.register_forward_hook(lambda m, i, o: captured.update(a=o))
    logits = model(x.clone().requires_grad_(True))
    handle.remove()
    activations = captured["a"]
    score = logits[torch.arange(5), torch.tensor(classes)].sum()
    (grads,) = torch.autograd.grad(score, activations)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * activations).sum(dim=1, keepdim=True)).detach()

    def unit(t):
        flat = t.flatten(1)
        low = flat.min(1).values.view(-1, 1, 1, 1)
        return (t - low) / (1e-7 + (flat.max(1).values.view(-1, 1, 1, 1) - low))

    expected = unit(F.interpolate(unit(cam), size=(32, 32), mode="bilinear", align_corners=False))[:, 0].numpy()

    extractor = CamExtractor(model, layer, "gradcam")
    maps = extractor.maps(x, classes)
    extractor.close()
    assert maps.shape == (5, 32, 32)
    assert expected.std() > 0.05  # not a trivial map
    np.testing.assert_allclose(maps, expected, atol=2e-3)
    # A different class gives a different map.
    assert np.abs(CamExtractor(model, layer, "gradcam").maps(x, [3, 0, 1, 2, 0]) - maps).max() > 0.1


EXPECTED_LAYERS = {
    # At 32 px ResNet-18's layer4 and EfficientNetV2-S's last stages are 1x1, so the last
    # whole block with a real grid is chosen (not a layer part way through a downsampling
    # block); a ViT is explained before its last attention.
    "tiny-cnn": ("features", (8, 8)),
    "tiny-resnet": ("layer3", (2, 2)),
    "tiny-efficientnet": ("features.5", (2, 2)),
    "tiny-vit": ("encoder.layers.encoder_layer_1.ln_1", (4, 4)),
}


def test_old_spelling_split_explains_the_same_images_with_one_warning(run, runs, sample_dataset, tmp_path):
    args = ("--limit", "1", "--no-figures", "-q")
    new = run("gradcam", runs["tiny-cnn"], sample_dataset, "-o", tmp_path / "new", "--splits", "val,test", *args)
    assert new.code == 0 and new.err == "", new.err
    old = run("gradcam", runs["tiny-cnn"], sample_dataset, "-o", tmp_path / "old", "--split", "val", "--split", "test", *args)
    assert old.code == 0, old.err
    assert old.err.splitlines() == ["synthmed: warning: gradcam --split is deprecated; use --splits "
                                    "(the old spelling goes in the next release)"]
    assert (tmp_path / "old" / "maps.csv").read_bytes() == (tmp_path / "new" / "maps.csv").read_bytes()
    assert {row["split"] for row in read_csv(tmp_path / "new" / "maps.csv")} == {"val", "test"}


@pytest.mark.parametrize("name", list(BUILDERS))
def test_automatic_layer_for_each_family(runs, name):
    from synthmed.gradcam.cam import choose_layer, find_layers

    model, _ = load(runs[name])
    layers = find_layers(model, channels=1, image_size=(32, 32))
    layer = choose_layer(layers)
    assert (layer.name, layer.grid) == EXPECTED_LAYERS[name]
    assert model.training is False


def test_resnet_at_a_larger_size_uses_layer4():
    import torch

    from synthmed.gradcam.cam import choose_layer, find_layers

    torch.manual_seed(0)
    model = BUILDERS["tiny-resnet"](num_classes=3, in_channels=1, image_size=64).eval()
    layers = find_layers(model, channels=1, image_size=(64, 64))
    assert choose_layer(layers).name == "layer4"
    problems = {layer.name: layer.problem for layer in layers}
    assert "runs 2 times" in problems["layer4.1.relu"]  # BasicBlock reuses its ReLU
    assert "in place" in problems["layer4.1.bn2"]  # `out += identity`


def test_layers_part_way_through_a_downsampling_block_are_not_chosen(runs):
    from synthmed.gradcam.cam import find_layers

    model, _ = load(runs["tiny-efficientnet"])
    layers = {layer.name: layer for layer in find_layers(model, channels=1, image_size=(32, 32))}
    assert layers["features.6.0.block.0"].grid == (2, 2) and layers["features.6.0.block.0"].mid_block
    assert not layers["features.5"].mid_block


def test_vit_tokens_after_the_last_attention_do_not_reach_the_head(runs):
    from synthmed.gradcam.cam import find_layers

    model, _ = load(runs["tiny-vit"])
    layers = {layer.name: layer for layer in find_layers(model, channels=1, image_size=(32, 32))}
    assert layers["encoder.layers.encoder_layer_1.ln_1"].class_tokens == 1
    assert "does not depend" in layers["encoder.layers.encoder_layer_1"].problem
    assert "does not depend" in layers["encoder.ln"].problem


def test_token_grid():
    from synthmed.gradcam.cam import token_grid

    assert token_grid(17, (32, 32)) == ((4, 4), 1)
    assert token_grid(16, (32, 32)) == ((4, 4), 0)
    assert token_grid(10, (32, 64)) is None
    assert token_grid(1 + 8, (32, 64)) == ((2, 4), 1)


# --------------------------------------------------------------------------- the command


def test_gradcam_writes_maps_overlays_and_rows(run, runs, sample_dataset, tmp_path):
    import torch
    from PIL import Image
    from safetensors.numpy import load_file

    from synthmed.batches import model_input
    from synthmed.gradcam.cam import CamExtractor, choose_layer, find_layers

    out = tmp_path / "cams"
    result = run(
        "gradcam", runs["tiny-cnn"], sample_dataset, "-o", out, "--splits", "test", "--limit", "2",
        "--target", "predicted,true", "-t", "ModerateDemented", "--device", "cpu", "--quiet", "--batch-size", "3",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert result.out == f"{out}\n"
    rows = read_csv(out / "maps.csv")
    ids = list(dict.fromkeys(r["id"] for r in rows))
    assert len(ids) == 8  # 2 per class
    assert len(rows) == 8 * 3
    assert {r["target"] for r in rows} == {"predicted", "true", "ModerateDemented"}
    dataset = Dataset.open(sample_dataset)
    by_id = {r["id"]: r for r in dataset.rows}
    assert all(by_id[i]["split"] == "test" for i in ids)

    # Values agree with the model run directly.
    model, config = load(runs["tiny-cnn"])
    chosen = [by_id[i] for i in ids]
    x = model_input(dataset.load_images(chosen), config["normalization"])
    with torch.no_grad():
        probabilities = torch.softmax(model(x), dim=1).numpy()
    extractor = CamExtractor(model, choose_layer(find_layers(model, channels=1, image_size=(32, 32))), "gradcam")
    true_maps = extractor.maps(x, dataset.label_indices(chosen))
    for k, image_id in enumerate(ids):
        mine = {r["target"]: r for r in rows if r["id"] == image_id}
        predicted = int(probabilities[k].argmax())
        assert mine["predicted"]["target_class"] == dataset.classes[predicted]
        assert mine["true"]["target_class"] == by_id[image_id]["label"]
        assert float(mine["predicted"]["probability"]) == pytest.approx(probabilities[k, predicted], abs=1e-5)
        assert float(mine["ModerateDemented"]["target_probability"]) == pytest.approx(probabilities[k, 3], abs=1e-5)
        assert mine["true"]["layer"] == "features" and mine["true"]["method"] == "gradcam"
        stored = load_file(str(out / mine["true"]["maps"]))
        assert set(stored) == {"predicted", "true", "ModerateDemented"}
        np.testing.assert_allclose(stored["true"], true_maps[k], atol=1e-6)
        overlay = Image.open(out / mine["true"]["overlay"])
        assert overlay.size[0] > 200  # a figure with a colour bar, not the 32 px image
    grid = np.asarray(Image.open(out / "cam_grid.png").convert("RGB")).astype(float)
    assert grid.shape[0] > 60 * len(dataset.classes) and grid.std() > 10  # a row of maps per class
    assert (np.abs(grid[..., 0] - grid[..., 2]) > 40).mean() > 0.01  # the maps are drawn in colour
    summary = json.loads((out / "summary.json").read_text())
    assert summary["layer"]["name"] == "features" and summary["maps"] == 24 and summary["pairs"] is None
    assert json.loads((out / "provenance.json").read_text())["command"] == "gradcam"


def test_gradcam_is_reproducible_and_json(run, runs, sample_dataset, tmp_path):
    first = run("gradcam", runs["tiny-cnn"], sample_dataset, "-o", tmp_path / "a", "--limit", "1", "--no-figures", "--seed", "3", "-q")
    second = run("gradcam", runs["tiny-cnn"], sample_dataset, "-o", tmp_path / "b", "--limit", "1", "--no-figures", "--seed", "3", "--json", "-q")
    assert first.code == second.code == 0
    assert (tmp_path / "a" / "maps.csv").read_bytes() == (tmp_path / "b" / "maps.csv").read_bytes()
    assert json.loads(second.out)["output"] == str(tmp_path / "b")
    assert not list((tmp_path / "a").glob("overlays"))
    other = run("gradcam", runs["tiny-cnn"], sample_dataset, "-o", tmp_path / "c", "--limit", "1", "--no-figures", "--seed", "4", "-q")
    assert other.code == 0
    assert read_csv(tmp_path / "c" / "maps.csv") != read_csv(tmp_path / "a" / "maps.csv")


@pytest.mark.parametrize("name", list(BUILDERS))
@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_every_family_and_method(run, runs, sample_dataset, tmp_path, name, method):
    from safetensors.numpy import load_file

    out = tmp_path / "cams"
    result = run(
        "gradcam", runs[name], sample_dataset, "-o", out, "--splits", "val", "--classes", "NonDemented,MildDemented",
        "--limit", "2", "--method", method, "--no-figures", "--device", "cpu", "-q", "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["layer"]["name"] == EXPECTED_LAYERS[name][0]
    rows = read_csv(out / "maps.csv")
    assert len(rows) == 4 and {r["label"] for r in rows} == {"NonDemented", "MildDemented"}
    maxima = []
    for row in rows:
        heat = load_file(str(out / row["maps"]))["predicted"]
        assert heat.shape == (32, 32) and heat.min() >= 0 and heat.max() <= 1
        maxima.append(float(heat.max()))
    # Scaled to [0, 1] per map; an untrained model may show no positive evidence (all zero) on some.
    assert max(maxima) == pytest.approx(1.0, abs=1e-3)


def test_layer_override(run, runs, sample_dataset, tmp_path):
    out = tmp_path / "cams"
    result = run("gradcam", runs["tiny-resnet"], sample_dataset, "-o", out, "--layer", "layer2", "--limit", "1", "--no-figures", "-q", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["layer"] == {"name": "layer2", "kind": "feature map", "shape": [128, 4, 4], "grid": [4, 4]}


def test_pairs_against_the_baseline(run, runs, pairs_dataset, tmp_path):
    out = tmp_path / "pairs"
    result = run(
        "gradcam", runs["tiny-cnn"], pairs_dataset, "-o", out, "--pairs", "--target", "true,ModerateDemented", "--device", "cpu",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "IoU" in result.err and "baseline" in result.err  # the table on stderr
    summary = json.loads((out / "summary.json").read_text())
    per_class = summary["pairs"]["classes"]
    assert set(per_class) == {"NonDemented", "VeryMildDemented", "MildDemented", "ModerateDemented"}
    exact = per_class["NonDemented"]["true"]
    assert exact["pairs"] == 2 and exact["baseline_pairs"] == 2
    # Exact copies are attended to exactly like their origin; unrelated images are not.
    assert exact["pearson"]["median"] == pytest.approx(1.0, abs=1e-6)
    assert exact["iou_top20"]["median"] == pytest.approx(1.0)
    assert exact["baseline"]["pearson"]["median"] < 0.99
    summary_keys = {"median", "q1", "q3", "n", "values"}  # synthmed.stats.summarize, as every report
    assert set(exact["pearson"]) == set(exact["baseline"]["iou_top20"]) == summary_keys
    assert exact["pearson"]["n"] == exact["pairs"]
    noisy = per_class["MildDemented"]["ModerateDemented"]
    assert noisy["pearson"]["median"] < 0.999

    pairs = read_csv(out / "pairs.csv")
    synthetic = [p for p in pairs if p["kind"] == "synthetic"]
    assert len(synthetic) == 8 * 2  # 8 synthetic images, 2 targets
    for pair in synthetic:
        assert pair["other_id"] == f"{pair['real_id']}--test-000"
        assert (out / pair["figure"]).is_file()
    baseline = [p for p in pairs if p["kind"] == "baseline"]
    data = Dataset.open(pairs_dataset)
    by_id = {r["id"]: r for r in data.rows}
    for pair in baseline:
        a, b = by_id[pair["real_id"]], by_id[pair["other_id"]]
        assert a["source"] == b["source"] == "real" and a["label"] == b["label"] == pair["label"]
        assert a["subject"] != b["subject"]
    # The maps of every image in a pair were computed.
    computed = {r["id"] for r in read_csv(out / "maps.csv")}
    assert {p["real_id"] for p in pairs} | {p["other_id"] for p in pairs} == computed


# --------------------------------------------------------------------------- similarity


def test_similarity_measures():
    from synthmed.gradcam.pairs import pearson, top_region, top_region_iou

    a = np.arange(100, dtype=np.float32).reshape(10, 10)
    assert pearson(a, 2 * a + 1) == pytest.approx(1.0)
    assert pearson(a, -a) == pytest.approx(-1.0)
    assert np.isnan(pearson(a, np.zeros_like(a)))
    assert top_region(a).sum() == 20 and top_region(a)[-2:].all()
    assert top_region_iou(a, a) == 1.0
    assert top_region_iou(a, a[::-1].copy()) == 0.0
    shifted = np.roll(a, -1, axis=0)  # top 20 % moves up one row: rows 7-8 vs rows 8-9
    assert top_region_iou(a, shifted) == pytest.approx(10 / 30)
    sparse = np.zeros((10, 10))
    sparse[0, :5] = 1
    assert top_region(sparse).sum() == 5  # zero pixels are never "top"
    assert np.isnan(top_region_iou(np.zeros((4, 4)), np.zeros((4, 4))))


def test_baseline_pairs_are_seeded_unrelated_and_per_class():
    from synthmed.gradcam.pairs import baseline_pairs

    rows = [
        {"id": f"{label}-{k}", "label": label, "subject": f"{label}-s{k // 2}", "source": "real"}
        for label in ("a", "b")
        for k in range(8)
    ]
    first = baseline_pairs(rows, {"a": 5, "b": 3}, seed=1)
    assert baseline_pairs(rows, {"a": 5, "b": 3}, seed=1) == first
    assert baseline_pairs(rows, {"a": 5, "b": 3}, seed=2) != first
    assert [p.label for p in first].count("a") == 5 and [p.label for p in first].count("b") == 3
    assert all(p.first["subject"] != p.second["subject"] and p.first["label"] == p.second["label"] for p in first)
    assert len({(p.first["id"], p.second["id"]) for p in first}) == 8
    # Class a's baseline does not depend on which other classes are asked for.
    only_a = baseline_pairs(rows, {"a": 5}, seed=1)
    assert only_a == [p for p in first if p.label == "a"]


# --------------------------------------------------------------------------- bad input


def test_run_trained_on_other_classes(run, sample_dataset, tmp_path):
    other = save_run(tmp_path / "other", "tiny-cnn", sample_dataset, classes=["Healthy", "Sick", "A", "B"])
    out = tmp_path / "cams"
    assert_usage_error(run("gradcam", other, sample_dataset, "-o", out), out, "classes", "Healthy", "NonDemented")


@pytest.mark.parametrize(
    "change, words",
    [
        ({"image_size": [64, 64]}, ["64x64", "32x32", "preprocess --size 64"]),
        ({"channels": 3}, ["3 channel"]),
        ({"name": "no-such-classifier"}, ["unknown classifier 'no-such-classifier'", "tiny-cnn"]),
    ],
)
def test_run_that_does_not_fit(run, sample_dataset, tmp_path, change, words):
    model_dir = save_run(tmp_path / "run", "tiny-cnn", sample_dataset)
    config = json.loads((model_dir / "config.json").read_text())
    (model_dir / "config.json").write_text(json.dumps({**config, **change}))
    out = tmp_path / "cams"
    assert_usage_error(run("gradcam", model_dir, sample_dataset, "-o", out, "--limit", "1"), out, *words)


def test_unknown_layer_lists_candidates(run, runs, sample_dataset, tmp_path):
    out = tmp_path / "cams"
    result = run("gradcam", runs["tiny-resnet"], sample_dataset, "-o", out, "--layer", "layer9", "--limit", "1")
    assert_usage_error(result, out, "--layer 'layer9'", "candidates", "layer3", "layer2")


def test_layer_that_cannot_be_explained(run, runs, sample_dataset, tmp_path):
    out = tmp_path / "cams"
    result = run("gradcam", runs["tiny-vit"], sample_dataset, "-o", out, "--layer", "encoder.ln", "--limit", "1")
    assert_usage_error(result, out, "does not depend", "encoder.layers.encoder_layer_1.ln_1")


def test_unknown_target_class(run, runs, sample_dataset, tmp_path):
    out = tmp_path / "cams"
    result = run("gradcam", runs["tiny-cnn"], sample_dataset, "-o", out, "--target", "predicted,Severe")
    assert_usage_error(result, out, "--target 'Severe'", "ModerateDemented")


def test_pairs_without_synthetic_images(run, runs, sample_dataset, tmp_path):
    out = tmp_path / "cams"
    result = run("gradcam", runs["tiny-cnn"], sample_dataset, "-o", out, "--pairs")
    assert_usage_error(result, out, "no synthetic images", "--pairs")


def test_pairs_whose_origins_are_missing(run, runs, pairs_dataset, tmp_path):
    # Only the synthetic rows: their origins are not in the dataset.
    source = Dataset.open(pairs_dataset)
    lonely = tmp_path / "lonely"
    with DatasetWriter(lonely, classes=source.classes, command="test") as writer:
        for row in source.select(source="synthetic"):
            writer.add_file(source.path_of(row), row)
    out = tmp_path / "cams"
    assert_usage_error(run("gradcam", runs["tiny-cnn"], lonely, "-o", out, "--pairs"), out, "origin")


@pytest.mark.parametrize(
    "args, words",
    [
        (["--method", "scorecam"], ["--method", "gradcam++"]),
        (["--splits", "training"], ["--splits 'training'"]),
        (["--classes", "Severe"], ["--classes 'Severe'"]),
        (["--source", "fake"], ["--source 'fake'"]),
        (["--pairs", "--source", "real"], ["--source", "--pairs"]),
        (["--splits", "val", "--source", "synthetic"], ["no images"]),
        (["--split", "test", "--splits", "val"], ["--split and --splits", "give only --splits"]),
    ],
)
def test_bad_options(run, runs, sample_dataset, tmp_path, args, words):
    out = tmp_path / "cams"
    assert_usage_error(run("gradcam", runs["tiny-cnn"], sample_dataset, "-o", out, *args), out, *words)


def test_existing_output_is_refused(run, runs, sample_dataset, tmp_path):
    out = tmp_path / "cams"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = run("gradcam", runs["tiny-cnn"], sample_dataset, "-o", out, "--limit", "1")
    assert result.code == 2 and "--overwrite" in result.err
    assert (out / "keep.txt").read_text() == "mine"


# --------------------------------------------------------------------------- the registry's classifiers


def registered_classifiers() -> list[str]:
    import synthmed

    return synthmed.list_classifiers()


@pytest.mark.parametrize("name", registered_classifiers())
def test_registered_classifier(run, sample_dataset, tmp_path, name):
    """Every built-in classifier (CNNs, ResNets, EfficientNet, ViT) gets a map, at 32 px, with its automatic layer."""
    from safetensors.numpy import load_file

    from synthmed.registry import get_entry

    model_dir = save_run(tmp_path / "run", name, sample_dataset, builder=get_entry("classifier", name).factory)
    out = tmp_path / "cams"
    result = run("gradcam", model_dir, sample_dataset, "-o", out, "--splits", "test", "--limit", "1", "--no-figures", "-q", "--json")
    assert result.code == 0, result.err
    rows = read_csv(out / "maps.csv")
    assert len(rows) == 4
    heat = load_file(str(out / rows[0]["maps"]))["predicted"]
    assert heat.shape == (32, 32) and np.isfinite(heat).all()


def test_map_points_at_the_evidence():
    """A CNN trained to tell where a bright square is (left or right half) gets Grad-CAM maps
    whose hottest pixel lies on the square, on images it has not seen."""
    import torch

    from synthmed.gradcam.cam import CamExtractor, choose_layer, find_layers

    def images(count: int, seed: int):
        rng = np.random.default_rng(seed)
        x = rng.normal(0, 0.3, (count, 1, 32, 32)).astype(np.float32)
        labels = rng.integers(0, 2, count)
        boxes = []
        for k, label in enumerate(labels):
            top, left = int(rng.integers(2, 22)), int(rng.integers(1, 8)) + 16 * int(label)
            x[k, 0, top : top + 8, left : left + 8] += 2.0
            boxes.append((top, left))
        return torch.from_numpy(x), torch.from_numpy(labels), boxes

    torch.manual_seed(0)
    model = BUILDERS["tiny-cnn"](num_classes=2, in_channels=1, image_size=32)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(60):
        x, y, _ = images(32, step)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    x, y, boxes = images(16, 1000)
    assert (model(x).argmax(1) == y).float().mean() >= 0.9
    extractor = CamExtractor(model, choose_layer(find_layers(model, channels=1, image_size=(32, 32))), "gradcam")
    maps = extractor.maps(x, y.tolist())
    extractor.close()
    hits = 0
    for heat, (top, left) in zip(maps, boxes):
        row, col = np.unravel_index(heat.argmax(), heat.shape)
        hits += top - 2 <= row < top + 10 and left - 2 <= col < left + 10
    assert hits >= 14, hits


def test_run_of_repeats_uses_the_first(run, sample_dataset, tmp_path):
    import torch

    from synthmed.batches import model_input

    repeats = tmp_path / "run"
    save_run(repeats / "run-01", "tiny-cnn", sample_dataset, seed=1)
    save_run(repeats / "run-02", "tiny-cnn", sample_dataset, seed=2)
    out = tmp_path / "cams"
    result = run("gradcam", repeats, sample_dataset, "-o", out, "--splits", "test", "--limit", "1", "--no-figures", "-q")
    assert result.code == 0, result.err
    rows = read_csv(out / "maps.csv")
    dataset = Dataset.open(sample_dataset)
    by_id = {r["id"]: r for r in dataset.rows}
    x = model_input(dataset.load_images([by_id[r["id"]] for r in rows]), dataset.stats)
    for folder, expected in (("run-01", True), ("run-02", False)):
        model, _ = load(repeats / folder)
        with torch.no_grad():
            probabilities = torch.softmax(model(x), dim=1).max(1).values.numpy()
        stored = np.array([float(r["probability"]) for r in rows])
        assert np.allclose(stored, probabilities, atol=1e-5) is expected


def test_colour_chest_xrays(run, tmp_path):
    """Real RGB chest X-rays (../shared/data): maps over the grayscale of a colour image."""
    from PIL import Image

    from conftest import shared_data

    root = shared_data("chest-xray-kermany-224")
    files = {label: sorted(root.rglob(f"*{label}*/*.jp*g"))[:3] for label in ("NORMAL", "PNEUMONIA")}
    if not all(files.values()):
        pytest.skip(f"{root}: expected NORMAL/ and PNEUMONIA/ folders of JPEGs")
    data = tmp_path / "xray"
    with DatasetWriter(data, classes=list(files), command="test") as writer:
        for label, paths in files.items():
            for k, path in enumerate(paths):
                pixels = np.asarray(Image.open(path).convert("RGB").resize((32, 32)))
                writer.add_image(pixels, id=f"{label}-{k}", label=label, split="test", subject=f"{label}-{k}")
    model_dir = save_run(tmp_path / "run", "tiny-cnn", data)
    out = tmp_path / "cams"
    result = run("gradcam", model_dir, data, "-o", out, "-t", "true,PNEUMONIA", "-q")
    assert result.code == 0, result.err
    rows = read_csv(out / "maps.csv")
    assert len(rows) == 12 and all((out / r["overlay"]).is_file() for r in rows)


def test_resume_after_an_interruption(run, runs, sample_dataset, tmp_path):
    from synthmed.gradcam.report import GradcamRequest, run_gradcam
    from synthmed.progress import Advanced, Started

    out = tmp_path / "cams"
    request = GradcamRequest(
        run=runs["tiny-cnn"], dataset=sample_dataset, out=out, targets=["predicted", "true"], splits=["test"],
        limit=3, batch_size=4, device="cpu", figures=False,
    )  # fmt: skip

    def interrupt(event) -> None:
        if isinstance(event, Advanced):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_gradcam(request, progress=interrupt)
    assert not out.exists() and len(list(partial_path(out).rglob("*.safetensors"))) == 4

    # Other options do not mix with the finished part.
    other = run("gradcam", runs["tiny-cnn"], sample_dataset, "-o", out, "--splits", "test", "--limit", "3",
                "-t", "predicted", "--no-figures", "--resume", "--batch-size", "4")  # fmt: skip
    assert other.code == 2 and other.err.count("\n") == 1, other.err
    assert "--target predicted,true, this run has --target predicted" in other.err
    assert len(list(partial_path(out).rglob("*.safetensors"))) == 4  # a refused --resume keeps the finished part

    with pytest.raises(KeyboardInterrupt):
        run_gradcam(request, progress=interrupt)
    remaining = []
    request.resume = True
    path, summary = run_gradcam(request, progress=lambda event: isinstance(event, Started) and remaining.append(event.total))
    assert remaining == [12 - 4] and summary["maps"] == 24

    fresh = tmp_path / "fresh"
    request.out, request.resume = fresh, False
    run_gradcam(request)
    assert (out / "maps.csv").read_text() == (fresh / "maps.csv").read_text()


def test_synthetic_pairs_follow_every_origin_in_the_dataset():
    from synthmed.gradcam.pairs import synthetic_pairs

    reals = {r["id"]: r for r in ({"id": i, "label": "x", "source": "real"} for i in ("a", "b"))}
    augmented = {"id": "c", "label": "x", "source": "augmented"}
    rows = [
        {"id": "s1", "label": "x", "source": "synthetic", "origin": "a;b"},  # an interpolation of two images
        {"id": "s2", "label": "x", "source": "synthetic", "origin": "missing;c"},
    ]
    pairs = synthetic_pairs(rows, {**reals, "c": augmented})
    assert [(p.first["id"], p.second["id"]) for p in pairs] == [("a", "s1"), ("b", "s1")]


def test_pairs_limit_per_class(run, runs, pairs_dataset, tmp_path):
    out = tmp_path / "pairs"
    result = run("gradcam", runs["tiny-cnn"], pairs_dataset, "-o", out, "--pairs", "--limit", "1", "--no-figures", "-q", "--json")
    assert result.code == 0, result.err
    per_class = json.loads(result.out)["pairs"]["classes"]
    assert {label: stats["predicted"]["pairs"] for label, stats in per_class.items()} == dict.fromkeys(per_class, 1)
    assert len(per_class) == 4
    assert not (out / "pairs").exists()  # --no-figures

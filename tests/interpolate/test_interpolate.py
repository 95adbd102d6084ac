"""`synthmed interpolate`: autoencoders, weights on the simplex, planning, the command, measures."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from synthmed.errors import UsageError
from tiny import TINY

TINY_ARGS = TINY["autoencoder"]


def read_rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "metadata.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def fitted(sample_dataset, tmp_path_factory) -> Path:
    """One interpolation run with a fitted cnn-ae (its model is reused by other tests)."""
    from synthmed.cli import main

    out = tmp_path_factory.mktemp("interp") / "out"
    code = main(["interpolate", str(sample_dataset), "-o", str(out), "--fit-epochs", "2", "--per-class", "3",
                 "--device", "cpu", "-q", "--lr", "0.01"])
    assert code == 0
    return out


# --------------------------------------------------------------------------- weights


def test_simplex_accepts_points_on_it_and_refuses_others():
    from synthmed.interpolate.latent import check_simplex, parse_alphas, parse_weight_vectors

    assert check_simplex([0.2, 0.3, 0.5]) == (0.2, 0.3, 0.5)
    assert parse_alphas("0,0.25,1") == [(1.0, 0.0), (0.75, 0.25), (0.0, 1.0)]
    with pytest.raises(UsageError, match="must not be negative"):
        check_simplex([-0.5, 1.5])
    with pytest.raises(UsageError, match="sum to 1"):
        check_simplex([0.7, 0.5])
    with pytest.raises(UsageError, match=r"\[0, 1\]"):
        parse_alphas("1.5")
    with pytest.raises(UsageError, match="--n is 3"):
        parse_weight_vectors(["0.5,0.5"], 3)


def test_mix_latents_is_the_weighted_sum():
    import torch

    from synthmed.interpolate.latent import mix_latents

    codes = torch.arange(12.0).reshape(1, 3, 4)  # one item, 3 parents, 4-d codes
    mixed = mix_latents(codes, torch.tensor([[0.5, 0.25, 0.25]]))
    assert torch.allclose(mixed[0], 0.5 * codes[0, 0] + 0.25 * codes[0, 1] + 0.25 * codes[0, 2])


# --------------------------------------------------------------------------- autoencoders


@pytest.mark.parametrize("name", list(TINY_ARGS))
def test_autoencoder_fits_round_trips_and_weight_one_gives_the_reconstruction(name, tmp_path):
    import torch

    from synthmed.checkpoint import load_checkpoint, save_checkpoint
    from synthmed.interpolate.latent import autoencoder_config, build_autoencoder, fit_autoencoder, interpolate
    from synthmed.registry import get_entry

    rng = np.random.default_rng(0)
    levels = np.linspace(20, 235, 12).reshape(12, 1, 1, 1)  # a dark to a bright image, with noise
    images = np.clip(levels + rng.normal(0, 10, size=(12, 1, 16, 16)), 0, 255).astype(np.uint8)
    entry = get_entry("autoencoder", name)
    model = build_autoencoder(entry, channels=1, image_size=(16, 16), args=TINY_ARGS[name])
    history = fit_autoencoder(model, images, epochs=10, batch_size=4, lr=1e-2, device="cpu", seed=0)
    assert len(history) == 10 and all(np.isfinite(history))
    assert history[-1] < history[0]

    config = autoencoder_config(entry, args=TINY_ARGS[name], channels=1, image_size=(16, 16), classes=["a"])
    save_checkpoint(tmp_path / "m", model, config)
    loaded, loaded_config = load_checkpoint(tmp_path / "m", kind="autoencoder")
    assert loaded_config["name"] == name and loaded_config["image_size"] == [16, 16]
    x = torch.from_numpy(images).float() / 255
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
        first = model.decode(model.encode(x[:1]))[0]
        second = model.decode(model.encode(x[1:2]))[0]
    both = x[[0, -1]]
    with torch.no_grad():
        second = model.decode(model.encode(x[-1:]))[0]
    assert torch.allclose(interpolate(model, both, [1.0, 0.0]), first, atol=1e-6)
    assert torch.allclose(interpolate(model, both, [0.0, 1.0]), second, atol=1e-6)
    middle = interpolate(model, both, [0.5, 0.5])
    assert first.mean() < middle.mean() < second.mean()
    with pytest.raises(UsageError):
        interpolate(model, both, [1.2, -0.2])


def test_unet_depth_follows_image_size_and_width_mult():
    from synthmed.default_plugins.autoencoders import build_unet_ae

    small = build_unet_ae(image_size=16, base_width=4)
    large = build_unet_ae(image_size=64, base_width=4, width_mult=1.5)
    assert len(small.downs) + 1 == 3  # 16 -> 8 -> 4
    assert len(large.downs) + 1 == 4  # capped at the four widths of the report
    assert large.inc[0][0].out_channels == 6  # 4 x 1.5


def test_bce_fitting_lowers_the_loss():
    from synthmed.default_plugins.autoencoders import build_cnn_ae
    from synthmed.interpolate.latent import fit_autoencoder, reconstruction_loss

    images = np.random.default_rng(0).integers(0, 256, size=(8, 1, 16, 16), dtype=np.uint8)
    history = fit_autoencoder(build_cnn_ae(image_size=16, width=8), images, epochs=4, loss="bce", batch_size=4,
                              lr=1e-2, seed=0)
    assert history[-1] < history[0]
    with pytest.raises(UsageError, match="--loss"):
        reconstruction_loss("l1")


# --------------------------------------------------------------------------- planning


def test_plan_is_seeded_per_item_and_sweeps_alphas(sample_dataset):
    from synthmed.data import Dataset
    from synthmed.interpolate.latent import parent_rows, parse_alphas, plan_interpolants

    data = Dataset.open(sample_dataset)
    rows = parent_rows(data)
    plan = plan_interpolants(rows, data.classes, n=2, counts={"MildDemented": 6}, seed=3, name="x",
                             weight_vectors=parse_alphas("0.25,0.75"))
    assert [p.weights for p in plan[:2]] == [(0.75, 0.25), (0.25, 0.75)]
    assert plan[0].parents == plan[1].parents != plan[2].parents
    labels = {r["id"]: r["label"] for r in rows}
    assert all(labels[p] == "MildDemented" for item in plan for p in item.parents)
    bigger = plan_interpolants(rows, data.classes, n=2, counts={"MildDemented": 8, "NonDemented": 2}, seed=3,
                               name="x", weight_vectors=parse_alphas("0.25,0.75"))
    assert [p for p in bigger if p.anchor == "MildDemented"][:6] == plan


# --------------------------------------------------------------------------- the command


def test_interpolate_writes_labelled_interpolants_model_quality_and_strips(fitted, sample_dataset):
    from synthmed.data import Dataset

    data = Dataset.open(fitted)
    data.verify()
    source = {r["id"]: r for r in Dataset.open(sample_dataset).rows}
    rows = read_rows(fitted)
    assert len(rows) == 12  # 3 per class x 4 classes
    for row in rows:
        parents = row["origin"].split(";")
        assert len(parents) == 2
        assert all(source[p]["split"] == "train" and source[p]["label"] == row["label"] for p in parents)
        weights = [float(w) for w in row["weights"].split(";")]
        assert sorted(weights) in ([0.25, 0.75], [0.5, 0.5]) and abs(sum(weights) - 1) < 1e-9
        assert row["source"] == "synthetic" and row["split"] == "train"
        assert row["generator"] == "cnn-ae@0.1.0" and row["seed"]
    quality = json.loads((fitted / "quality.json").read_text())
    recon = quality["reconstruction_val"]
    assert recon["images"] == len([r for r in source.values() if r["split"] == "val"])
    assert 5 < recon["psnr"] < 60 and 0 < recon["ssim"] <= 1 and recon["mse"] > 0
    made = quality["overall"]
    assert made["synthetic"] == 12 and min(made["nearest_real"]["values"]) > 0
    assert min(made["nearest_real_features"]["values"]) > 0
    assert 0 <= made["near_copy_share"] <= 1
    assert sorted(quality["classes"]) == sorted(data.classes)
    assert all(entry["synthetic"] == 3 for entry in quality["classes"].values())
    assert quality["lpips"].startswith("unavailable")
    assert sorted(p.name for p in (fitted / "figures").iterdir()) == [f"strip-{c}.png" for c in sorted(data.classes)]
    from PIL import Image

    strip = np.asarray(Image.open(fitted / "figures" / f"strip-{data.classes[0]}.png").convert("L"))
    assert strip.shape[1] > 5 * 64 and strip.std() > 10  # parents and interpolants, titled, side by side
    config = json.loads((fitted / "model" / "config.json").read_text())
    assert config["kind"] == "autoencoder" and config["image_size"] == [32, 32]


def test_weight_one_on_a_parent_writes_its_reconstruction(fitted, sample_dataset, run, tmp_path):
    import torch

    from synthmed.checkpoint import load_checkpoint
    from synthmed.data import Dataset
    from synthmed.interpolate.latent import to_stored
    from synthmed.data.imageio import decode_png

    out = tmp_path / "one"
    result = run("interpolate", sample_dataset, "-o", out, "--model", fitted / "model", "--alphas", "0",
                 "--per-class", "1", "--device", "cpu", "-q")
    assert result.code == 0, result.err
    assert result.out.strip() == str(out)
    model, _ = load_checkpoint(fitted / "model", kind="autoencoder")
    data = Dataset.open(sample_dataset)
    by_id = {r["id"]: r for r in data.rows}
    for row in read_rows(out):
        first = row["origin"].split(";")[0]
        pixels = torch.from_numpy(data.load_images([by_id[first]])).float() / 255
        with torch.no_grad():
            expected = to_stored(model.decode(model.encode(pixels)), bit_depth=8)[0, 0]
        written = decode_png(out / row["file_name"])
        assert np.abs(written.astype(int) - expected.astype(int)).max() <= 1


def test_same_seed_same_output_and_shards_add_up(fitted, sample_dataset, run, tmp_path):
    common = ["--model", fitted / "model", "--per-class", "2", "--device", "cpu", "-q", "--seed", "5"]
    assert run("interpolate", sample_dataset, "-o", tmp_path / "a", *common).code == 0
    assert run("interpolate", sample_dataset, "-o", tmp_path / "b", *common).code == 0
    assert (tmp_path / "a" / "metadata.csv").read_bytes() == (tmp_path / "b" / "metadata.csv").read_bytes()
    for k in (1, 2):
        assert run("interpolate", sample_dataset, "-o", tmp_path / f"s{k}", *common, "--shard", f"{k}/2").code == 0
    whole = {(r["id"], r["sha256"]) for r in read_rows(tmp_path / "a")}
    parts = [{(r["id"], r["sha256"]) for r in read_rows(tmp_path / f"s{k}")} for k in (1, 2)]
    assert parts[0] | parts[1] == whole and not parts[0] & parts[1]


def test_old_spelling_weights_mixes_the_same_with_one_warning(fitted, sample_dataset, run, tmp_path):
    common = ["--model", fitted / "model", "--n", "3", "--per-class", "1", "--device", "cpu", "-q"]
    new = run("interpolate", sample_dataset, "-o", tmp_path / "new", *common, "--mix-weights", "0.2,0.3,0.5")
    assert new.code == 0 and new.err == "", new.err
    old = run("interpolate", sample_dataset, "-o", tmp_path / "old", *common, "--weights", "0.2,0.3,0.5")
    assert old.code == 0, old.err
    assert old.err.splitlines() == ["synthmed: warning: interpolate --weights is deprecated; use --mix-weights "
                                    "(the old spelling goes in the next release)"]
    assert (tmp_path / "old" / "metadata.csv").read_bytes() == (tmp_path / "new" / "metadata.csv").read_bytes()
    assert {row["weights"] for row in read_rows(tmp_path / "new")} == {"0.2;0.3;0.5"}


def test_across_classes_n3_dirichlet_writes_soft_labels(fitted, sample_dataset, run, tmp_path):
    from synthmed.data import Dataset

    out = tmp_path / "across"
    result = run("interpolate", sample_dataset, "-o", out, "--model", fitted / "model", "--across-classes", "--n", "3",
                 "--concentration", "0.5", "--per-class", "2", "--device", "cpu", "-q")
    assert result.code == 0, result.err
    data = Dataset.open(sample_dataset)
    label_of = {r["id"]: r["label"] for r in data.rows}
    rows = read_rows(out)
    assert len(rows) == 8
    for row in rows:
        parents = row["origin"].split(";")
        weights = [float(w) for w in row["weights"].split(";")]
        soft = [float(w) for w in row["soft_label"].split(";")]
        assert len(parents) == 3 and abs(sum(weights) - 1) < 1e-5 and abs(sum(soft) - 1) < 1e-5
        assert label_of[parents[0]] == row["anchor"]
        assert all(label_of[p] != row["anchor"] for p in parents[1:])
        expected = [sum(w for p, w in zip(parents, weights) if label_of[p] == c) for c in data.classes]
        assert np.allclose(soft, expected, atol=1e-5)
        assert soft[data.classes.index(row["label"])] == pytest.approx(max(soft))


def stop_on_first(description):
    """A progress sink that interrupts (Ctrl-C) at the first advance of the task so named."""
    from synthmed.progress import Advanced

    def stop(event):
        if isinstance(event, Advanced) and event.description == description:
            raise KeyboardInterrupt

    return stop


def test_resume_after_interruption_finishes_without_duplicates(fitted, sample_dataset, tmp_path):
    from synthmed.interpolate.job import InterpolationSettings, execute, prepare

    settings = InterpolationSettings(dataset=sample_dataset, out=tmp_path / "r", model_dir=fitted / "model",
                                     per_class=3, device="cpu", batch_size=4)

    with pytest.raises(KeyboardInterrupt):
        execute(prepare(settings), progress=stop_on_first("interpolating"))
    assert not (tmp_path / "r").exists() and (tmp_path / ".r.partial").is_dir()
    settings.resume = True
    summary = execute(prepare(settings))
    assert summary["already_done"] == 4 and summary["written"] == 8
    rows = read_rows(tmp_path / "r")
    assert len({r["id"] for r in rows}) == len(rows) == 12


def test_resume_reuses_the_model_fitted_before_the_interruption(sample_dataset, tmp_path):
    from synthmed.interpolate.job import InterpolationSettings, execute, prepare

    settings = InterpolationSettings(dataset=sample_dataset, out=tmp_path / "r", fit_epochs=1, per_class=2,
                                     device="cpu", batch_size=4)

    with pytest.raises(KeyboardInterrupt):
        execute(prepare(settings), progress=stop_on_first("interpolating"))
    weights = tmp_path / ".r.partial" / "model" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    settings.resume = True
    summary = execute(prepare(settings))
    assert summary["already_done"] == 4 and summary["quality"]["model"] == "model"  # as an uninterrupted run says; the mtime shows it was not refitted
    assert (tmp_path / "r" / "model" / "model.safetensors").stat().st_mtime_ns == stamp


# --------------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def single_image_class(tmp_path_factory) -> Path:
    """Class `many` has four train images, class `one` a single one."""
    from synthmed.data import DatasetWriter

    out = tmp_path_factory.mktemp("single") / "data"
    rng = np.random.default_rng(0)
    with DatasetWriter(out, classes=["many", "one"], command="test") as writer:
        for i, (label, split) in enumerate([("many", "train")] * 4 + [("one", "train"), ("many", "val"), ("one", "val")]):
            writer.add_image(rng.integers(0, 256, (16, 16), dtype=np.uint8), id=f"img{i}", label=label, split=split)
    return out


@pytest.fixture(scope="module")
def other_size_dataset(tmp_path_factory) -> Path:
    from synthmed.data.sample import write_sample_dataset

    return write_sample_dataset(tmp_path_factory.mktemp("small") / "data", size=16, scale=0.01, seed=0)


BAD_INPUT = {
    "weights not summing to 1": (["--mix-weights", "0.7,0.5"], "sum to 1"),
    "negative weights": (["--mix-weights", "-0.5,1.5"], "negative"),
    "alpha outside [0, 1]": (["--alphas", "1.5"], "[0, 1]"),
    "n larger than a class": (["--n", "5"], "'ModerateDemented' has 4 train image(s); --n 5"),
    "per-class with ratio": (["--per-class", "2", "--ratio", "0.5"], "--per-class and --ratio"),
    "alphas with n 3": (["--n", "3", "--alphas", "0.5"], "--alphas is for pairs"),
    "shard without model": (["--shard", "1/2"], "--shard needs --model"),
    "unknown autoencoder argument": (["-a", "colour=1"], "bad argument"),
    "unknown class": (["--classes", "Nope"], "Nope not in"),
    "unknown loss": (["--loss", "l1"], "--loss 'l1'"),
    "unknown autoencoder": (["--autoencoder", "nope"], "unknown autoencoder 'nope'"),
    "old and new spelling": (["--weights", "0.5,0.5", "--mix-weights", "0.5,0.5"], "give only --mix-weights"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_options_exit_2_and_leave_nothing(case, sample_dataset, run, tmp_path):
    options, message = BAD_INPUT[case]
    result = run("interpolate", sample_dataset, "-o", tmp_path / "out", "--fit-epochs", "1", "--device", "cpu", *options)
    assert result.code == 2
    assert result.err.startswith("synthmed: error: ") and result.err.count("\n") == 1
    assert message in result.err
    assert list(tmp_path.iterdir()) == []


def test_a_class_with_a_single_image_is_refused(single_image_class, run, tmp_path):
    result = run("interpolate", single_image_class, "-o", tmp_path / "out", "--fit-epochs", "1", "--device", "cpu")
    assert result.code == 2 and result.err.count("\n") == 1
    assert "class 'one' has a single train image" in result.err and "--classes" in result.err
    assert list(tmp_path.iterdir()) == []
    ok = run("interpolate", single_image_class, "-o", tmp_path / "out", "--fit-epochs", "1", "--device", "cpu",
             "--classes", "many", "--per-class", "2", "-q")
    assert ok.code == 0, ok.err
    assert {r["label"] for r in read_rows(tmp_path / "out")} == {"many"}


def test_model_with_fit_epochs_or_another_autoencoder_is_refused(fitted, sample_dataset, run, tmp_path):
    for options, message in ((["--fit-epochs", "3"], "--fit-epochs and --model"),
                             (["--autoencoder", "vae"], "holds autoencoder 'cnn-ae', not 'vae'"),
                             (["-a", "width=8"], "fixed when it was fitted")):
        result = run("interpolate", sample_dataset, "-o", tmp_path / "out", "--model", fitted / "model", *options)
        assert result.code == 2 and message in result.err and result.err.count("\n") == 1
        assert list(tmp_path.iterdir()) == []


def test_a_corrupt_model_is_refused_before_any_output(fitted, sample_dataset, run, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(fitted / "model", broken)
    (broken / "model.safetensors").write_bytes(b"garbage")
    out = tmp_path / "work"
    out.mkdir()
    result = run("interpolate", sample_dataset, "-o", out / "out", "--model", broken, "--device", "cpu")
    assert result.code == 2 and "model.safetensors" in result.err and result.err.count("\n") == 1
    assert list(out.iterdir()) == []


def test_a_model_trained_on_another_image_size_is_refused(fitted, other_size_dataset, run, tmp_path):
    result = run("interpolate", other_size_dataset, "-o", tmp_path / "out", "--model", fitted / "model", "--device", "cpu")
    assert result.code == 2 and result.err.count("\n") == 1
    assert "trained on 32x32 px images" in result.err and "16x16" in result.err
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- LPIPS


def test_lpips_from_local_backbone_weights(fitted, sample_dataset, run, tmp_path):
    import torch
    import torchvision

    from synthmed.interpolate.quality import load_lpips

    torch.manual_seed(0)
    weights = tmp_path / "squeezenet.pth"
    torch.save(torchvision.models.squeezenet1_1(weights=None).state_dict(), weights)
    score, backbone = load_lpips(weights)
    assert backbone == "squeeze"
    a, b = torch.rand(3, 1, 32, 32), torch.rand(3, 1, 32, 32)
    assert torch.allclose(score(a, a), torch.zeros(3), atol=1e-6)
    assert (score(a, b) > 0).all()

    (tmp_path / "junk.pth").write_bytes(b"not weights")
    result = run("interpolate", sample_dataset, "-o", tmp_path / "bad", "--model", fitted / "model",
                 "--lpips-weights", tmp_path / "junk.pth", "--device", "cpu")
    assert result.code == 2 and "--lpips-weights" in result.err and not (tmp_path / "bad").exists()

    result = run("interpolate", sample_dataset, "-o", tmp_path / "ok", "--model", fitted / "model", "--per-class", "1",
                 "--lpips-weights", weights, "--device", "cpu", "-q")
    assert result.code == 0, result.err
    quality = json.loads((tmp_path / "ok" / "quality.json").read_text())
    assert quality["reconstruction_val"]["lpips"] > 0
    assert quality["overall"]["lpips_to_nearest_train"]["median"] > 0
    assert quality["lpips"].startswith("squeeze")


# --------------------------------------------------------------------------- measures


def test_quality_counts_exact_copies_and_measures_novelty():
    from synthmed.default_plugins.autoencoders import build_cnn_ae
    from synthmed.interpolate.quality import interpolant_quality

    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:32, 0:32]
    train = np.stack([((np.sin(xx / (2 + i)) + np.cos(yy / (3 + i))) * 60 + 128).astype(np.uint8)[None] for i in range(6)])
    model = build_cnn_ae(image_size=32, width=8).eval()
    copies = interpolant_quality(model, train[:3], [[0, 1], [1, 2], [2, 3]], train, device="cpu", reference=train[3:])
    copies = copies["overall"]
    assert copies["near_copies"] == 3 and copies["near_copy_share"] == 1.0
    assert max(copies["nearest_real"]["values"]) == pytest.approx(0.0, abs=1e-6)
    assert max(copies["nearest_real_features"]["values"]) == pytest.approx(0.0, abs=1e-6)
    assert min(copies["ssim_to_parents_max"]["values"]) == pytest.approx(1.0, abs=1e-4)  # each is its own first parent
    noise = rng.integers(0, 256, size=(3, 1, 32, 32), dtype=np.uint8)
    novel = interpolant_quality(model, noise, [[0, 1], [1, 2], [2, 3]], train, device="cpu")
    novel = novel["overall"]
    assert novel["near_copies"] == 0
    assert min(novel["nearest_real"]["values"]) > 0.1
    assert max(novel["ssim_to_parents_max"]["values"]) < 0.5


@pytest.mark.parametrize("kind", ["rgb", "16-bit"])
def test_rgb_and_16_bit_datasets_keep_their_format(kind, run, tmp_path):
    from synthmed.data import Dataset, DatasetWriter

    rng = np.random.default_rng(0)
    with DatasetWriter(tmp_path / "data", classes=["a", "b"], command="test") as writer:
        for i in range(12):
            if kind == "rgb":
                pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            else:
                pixels = rng.integers(0, 65536, (16, 16), dtype=np.uint16)
            writer.add_image(pixels, id=f"i{i}", label="ab"[i % 2], split="val" if i >= 10 else "train")
    result = run("interpolate", tmp_path / "data", "-o", tmp_path / "out", "--fit-epochs", "1", "--per-class", "2",
                 "--device", "cpu", "-q")
    assert result.code == 0, result.err
    out = Dataset.open(tmp_path / "out")
    assert out.channels == (3 if kind == "rgb" else 1)
    assert out.bit_depth == (8 if kind == "rgb" else 16)
    assert out.load_images(out.rows).shape == (4, out.channels, 16, 16)


def test_acai_trains_its_critic_and_saves_it(tmp_path):
    import torch

    from synthmed.checkpoint import load_checkpoint, save_checkpoint
    from synthmed.interpolate.latent import autoencoder_config, build_autoencoder, fit_autoencoder
    from synthmed.registry import get_entry

    images = np.random.default_rng(0).integers(0, 256, size=(8, 1, 16, 16), dtype=np.uint8)
    entry = get_entry("autoencoder", "acai")
    model = build_autoencoder(entry, channels=1, image_size=(16, 16), args=TINY_ARGS["acai"])
    before = [p.detach().clone() for p in model.critic.parameters()]
    fit_autoencoder(model, images, epochs=2, batch_size=4, lr=1e-2, seed=0)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.critic.parameters()))
    save_checkpoint(tmp_path / "m", model, autoencoder_config(entry, args=TINY_ARGS["acai"], channels=1,
                                                              image_size=(16, 16), classes=["a"]))
    loaded, _ = load_checkpoint(tmp_path / "m", kind="autoencoder")
    assert all(torch.equal(a, b) for a, b in zip(model.critic.parameters(), loaded.critic.parameters()))

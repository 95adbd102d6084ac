"""`synthmed generate` end to end with the built-in class-conditional generators."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from gen_helpers import JudgePlugin, assert_usage_error, make_dataset, sample16, save_judge

TINY = {
    "acgan": ["-g", "width=8", "-g", "batch_size=16"],
    "dcgan": ["-g", "width=8", "-g", "batch_size=16"],
    "ddpm": ["-g", "preset=tiny", "-g", "batch_size=32", "--steps", "3"],
}


@pytest.fixture(scope="module")
def small16(tmp_path_factory) -> Path:
    """16 px sample data, read only."""
    return sample16(tmp_path_factory.mktemp("small16"))


def rows_of(folder: Path) -> list[dict]:
    with open(folder / "metadata.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("name", ["acgan", "dcgan", "ddpm"])
def test_each_generator_fits_and_samples_counts_per_class(run, small16, tmp_path, name):
    from synthmed.data import Dataset

    out = tmp_path / "syn"
    result = run("generate", small16, "-o", out, "--generator", name, *TINY[name], "--fit-epochs", "1",
                 "--classes", "NonDemented,ModerateDemented", "--per-class", "3", "--seed", "1", "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["output"] == str(out) and summary["written"] == 6
    data = Dataset.open(out)
    data.verify()
    rows = data.rows
    assert Counter(r["label"] for r in rows) == {"NonDemented": 3, "ModerateDemented": 3}
    assert {r["source"] for r in rows} == {"synthetic"} and {r["split"] for r in rows} == {"train"}
    assert {r["generator"] for r in rows} == {f"{name}@0.1.0"}
    assert all(r["seed"].isdigit() for r in rows)
    assert data.image_size == (16, 16) and data.channels == 1
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["name"] == name and config["classes"] == data.classes
    quality = json.loads((out / "quality.json").read_text())
    assert set(quality["classes"]) == {"NonDemented", "ModerateDemented"}
    assert (out / "contact-sheets" / "ModerateDemented.png").is_file()


def test_model_reuse_is_reproducible_and_shards_add_up(run, small16, tmp_path):
    fitted = tmp_path / "fitted"
    assert run("generate", small16, "-o", fitted, "--generator", "acgan", *TINY["acgan"], "--fit-epochs", "1",
               "--fit-only").code == 0
    assert (fitted / "model" / "model.safetensors").is_file() and not (fitted / "metadata.csv").exists()

    common = ["--generator", "acgan", "--model", fitted, "--per-class", "5", "--seed", "3", "-q"]
    full = tmp_path / "full"
    assert run("generate", small16, "-o", full, *common).code == 0
    again = tmp_path / "again"
    assert run("generate", small16, "-o", again, *common, "--batch-size", "3").code == 0
    shards = [tmp_path / "s1", tmp_path / "s2"]
    for k, out in enumerate(shards, start=1):
        assert run("generate", small16, "-o", out, *common, "--shard", f"{k}/2").code == 0

    def digests(folder):
        return {r["id"]: r["sha256"] for r in rows_of(folder)}

    assert digests(full) == digests(again)  # batching does not change images
    merged = {**digests(shards[0]), **digests(shards[1])}
    assert len(digests(shards[0])) + len(digests(shards[1])) == 20
    assert merged == digests(full)


class FlakyAcgan:
    """Plugin: `flaky`, an AC-GAN that crashes after `fail_after` fitted steps or sampled images."""

    def __init__(self):
        self.fail_fit_after = None
        self.fail_sample_after = None
        self.fits = 0

    def factory(self, **args):
        from synthmed.generate.gans import AcganGenerator

        plugin = self

        class Flaky(AcganGenerator):
            name = "flaky"

            def fit(self, images, labels, *, progress=None, **kwargs):
                plugin.fits += 1
                steps = [0]

                def counting(n=1, **status):
                    steps[0] += n
                    if plugin.fail_fit_after is not None and steps[0] > plugin.fail_fit_after:
                        raise RuntimeError("simulated crash while fitting")
                    if progress is not None:
                        progress(n, **status)

                super().fit(images, labels, progress=counting, **kwargs)

            def sample_seeds(self, class_index, seeds, *, device):
                if plugin.fail_sample_after is not None:
                    plugin.fail_sample_after -= len(seeds)
                    if plugin.fail_sample_after < 0:
                        raise RuntimeError("simulated crash while sampling")
                return super().sample_seeds(class_index, seeds, device=device)

        return Flaky(**args)

    from synthmed.hookspecs import hookimpl

    @hookimpl
    def register_generators(self, register):
        register("flaky", self.factory, conditioning="class", min_images=4)


@pytest.fixture
def flaky():
    from synthmed.plugins import get_plugin_manager

    plugin = FlakyAcgan()
    pm = get_plugin_manager()
    pm.register(plugin, name="flaky-test")
    try:
        yield plugin
    finally:
        pm.unregister(name="flaky-test")


def test_resume_after_crash_while_sampling_and_fitting(run, small16, tmp_path, flaky):
    args = ["--generator", "flaky", *TINY["acgan"], "--fit-epochs", "2", "--per-class", "4", "--batch-size", "2",
            "--seed", "5", "-q"]
    reference = tmp_path / "reference"
    assert run("generate", small16, "-o", reference, *args).code == 0

    # Crash in the second epoch of the fit: the first epoch's checkpoint survives.
    out = tmp_path / "out"
    flaky.fail_fit_after = 6  # 4 steps per epoch
    result = run("generate", small16, "-o", out, *args)
    assert result.code == 1 and "simulated crash" in result.err
    partial = tmp_path / ".out.partial"
    assert (partial / "fit-state" / "fit-state.safetensors").is_file() and not out.exists()

    # Resume the fit, then crash after 5 sampled images.
    flaky.fail_fit_after, flaky.fail_sample_after = None, 5
    result = run("generate", small16, "-o", out, *args, "--resume")
    assert result.code == 1 and "simulated crash while sampling" in result.err
    journal = (partial / "rows.jsonl").read_text().splitlines()
    assert len(journal) == 4  # two full batches of 2 written before the crash
    assert (partial / "model" / "config.json").is_file() and not (partial / "fit-state").exists()

    fits_before = flaky.fits
    flaky.fail_sample_after = None
    result = run("generate", small16, "-o", out, *args, "--resume", "--dry-run", "--json")
    assert json.loads(result.out)["already_done"] == 4 and json.loads(result.out)["planned"] == 12
    result = run("generate", small16, "-o", out, *args, "--resume", "--json")
    assert result.code == 0, result.err
    assert flaky.fits == fits_before  # the finished fit is not redone
    summary = json.loads(result.out)
    assert summary["already_done"] == 4 and summary["written"] == 12
    ids = [r["id"] for r in rows_of(out)]
    assert len(ids) == len(set(ids)) == 16
    # Resumed fit and sampling give exactly what an uninterrupted run gives.
    assert (out / "model" / "model.safetensors").read_bytes() == (reference / "model" / "model.safetensors").read_bytes()
    assert sorted((r["id"], r["sha256"]) for r in rows_of(out)) == sorted((r["id"], r["sha256"]) for r in rows_of(reference))


def test_judge_gives_label_fidelity(run, small16, tmp_path):
    from synthmed.data import Dataset
    from synthmed.plugins import get_plugin_manager

    pm = get_plugin_manager()
    pm.register(JudgePlugin(), name="judge-test")
    try:
        judge = save_judge(tmp_path / "judge", Dataset.open(small16), favourite=0)
        out = tmp_path / "syn"
        result = run("generate", small16, "-o", out, "--generator", "dcgan", *TINY["dcgan"], "--fit-epochs", "1",
                     "--classes", "NonDemented,MildDemented", "--per-class", "2", "--judge", judge)
        assert result.code == 0, result.err
    finally:
        pm.unregister(name="judge-test")
    quality = json.loads((out / "quality.json").read_text())
    assert quality["classes"]["NonDemented"]["label_fidelity"] == 1.0
    assert quality["classes"]["MildDemented"]["label_fidelity"] == 0.0
    assert quality["overall"]["label_fidelity"] == 0.5
    assert "judge" in result.err and "verdict" in result.err  # the table on stderr


def test_counts_from_ratio_and_balance_and_dry_run(run, small16, tmp_path):
    result = run("generate", small16, "-o", tmp_path / "x", "--generator", "acgan", "--ratio", "0.5", "--dry-run", "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    # real train counts are 35/27/6/4 (round half to even)
    assert summary["counts"] == {"NonDemented": 18, "VeryMildDemented": 14, "MildDemented": 3, "ModerateDemented": 2}
    result = run("generate", small16, "-o", tmp_path / "x", "--generator", "acgan", "--balance", "--dry-run", "--json")
    assert json.loads(result.out)["counts"] == {"VeryMildDemented": 7, "MildDemented": 29, "ModerateDemented": 31}
    result = run("generate", small16, "-o", tmp_path / "x", "--generator", "acgan", "--per-class", "3", "--dry-run")
    assert result.out.startswith("would fit, then make 12 image(s)")
    assert not (tmp_path / "x").exists() and not (tmp_path / ".x.partial").exists()


# ---------------------------------------------------------------------------- bad input


def test_unknown_class(run, small16, tmp_path):
    out = tmp_path / "o"
    result = run("generate", small16, "-o", out, "--generator", "acgan", "--classes", "Nope", "--per-class", "2")
    assert_usage_error(result, out, "--classes", "'Nope'", "NonDemented")


def test_per_class_with_ratio(run, small16, tmp_path):
    out = tmp_path / "o"
    result = run("generate", small16, "-o", out, "--generator", "acgan", "--per-class", "2", "--ratio", "0.2")
    assert_usage_error(result, out, "--per-class", "--ratio")


def test_model_from_another_generator_or_class_list(run, small16, tmp_path):
    fitted = tmp_path / "fitted"
    assert run("generate", small16, "-o", fitted, "--generator", "dcgan", *TINY["dcgan"], "--fit-epochs", "1",
               "--fit-only", "--classes", "ModerateDemented").code == 0
    out = tmp_path / "o"
    result = run("generate", small16, "-o", out, "--generator", "acgan", "--model", fitted, "--per-class", "2")
    assert_usage_error(result, out, "--model", "'dcgan'", "--generator dcgan")
    # The model was fitted on one class only.
    result = run("generate", small16, "-o", out, "--generator", "dcgan", "--model", fitted, "--per-class", "2")
    assert_usage_error(result, out, "not fitted on class 'NonDemented'")
    other = make_dataset(tmp_path / "other", {"a": [("train", 16)] * 4, "b": [("train", 16)] * 4})
    result = run("generate", other, "-o", out, "--generator", "dcgan", "--model", fitted, "--per-class", "2")
    assert_usage_error(result, out, "--model", "classes")


def test_too_few_images_in_a_class(run, tmp_path):
    data = make_dataset(tmp_path / "d", {"big": [("train", 16)] * 6, "tiny": [("train", 16)] * 2 + [("test", 16)] * 5})
    out = tmp_path / "o"
    result = run("generate", data, "-o", out, "--generator", "acgan", "--per-class", "2")
    assert_usage_error(result, out, "'tiny'", "2 real train image", "at least 4")


def test_mixed_sizes(run, tmp_path):
    data = make_dataset(tmp_path / "d", {"a": [("train", 16)] * 4 + [("train", 32)] * 4})
    out = tmp_path / "o"
    result = run("generate", data, "-o", out, "--generator", "acgan", "--per-class", "2")
    assert_usage_error(result, out, "mixed sizes", "preprocess")


def test_corrupt_checkpoint(run, small16, tmp_path):
    fitted = tmp_path / "fitted"
    assert run("generate", small16, "-o", fitted, "--generator", "acgan", *TINY["acgan"], "--fit-epochs", "1",
               "--fit-only").code == 0
    weights = fitted / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    out = tmp_path / "o"
    result = run("generate", small16, "-o", out, "--generator", "acgan", "--model", fitted, "--per-class", "2")
    assert_usage_error(result, out, "corrupt", "model.safetensors")
    (fitted / "model" / "config.json").write_text("{not json")
    result = run("generate", small16, "-o", out, "--generator", "acgan", "--model", fitted / "model", "--per-class", "2")
    assert_usage_error(result, out, "config.json", "not valid JSON")


@pytest.mark.parametrize("args, words", [
    (["--per-image", "2"], ["--per-image", "image-conditional"]),
    (["--per-class", "2", "-g", "nope=1"], ["-g", "nope"]),
    (["--per-class", "2", "-g", "novalue"], ["KEY=VALUE"]),
    (["--per-class", "2", "--shard", "1/2"], ["--shard", "--model"]),
    (["--per-class", "2", "--shard", "3/2"], ["--shard"]),
    (["--fit-only", "--model", "x"], ["--model", "--fit-only"]),
    (["--fit-only", "--per-class", "3"], ["--fit-only", "--per-class"]),
    (["--per-class", "2", "--copy-threshold", "-1"], ["--copy-threshold"]),
    ([], ["--per-class", "--ratio", "--balance"]),
])
def test_option_errors(run, small16, tmp_path, args, words):
    out = tmp_path / "o"
    result = run("generate", small16, "-o", out, "--generator", "acgan", *args)
    assert_usage_error(result, out, *words)


# ---------------------------------------------------------------------------- image-conditional option checks


class HostedVariations:
    """Plugin: an image-conditional generator that would upload to api.example.org."""

    name = "hosted"
    version = "1"
    upload_host = "api.example.org"

    def columns(self):
        return {}

    def vary(self, tasks, *, device, concurrency):  # pragma: no cover - never reached in these tests
        raise AssertionError("vary must not be called")

    from synthmed.hookspecs import hookimpl

    @hookimpl
    def register_generators(self, register):
        register("hosted", lambda **args: self, conditioning="image")


@pytest.fixture
def hosted(monkeypatch):
    from synthmed.plugins import get_plugin_manager

    monkeypatch.delenv("SYNTHMED_ALLOW_UPLOAD", raising=False)
    pm = get_plugin_manager()
    pm.register(HostedVariations(), name="hosted-test")
    try:
        yield
    finally:
        pm.unregister(name="hosted-test")


@pytest.mark.parametrize("args, words", [
    (["--per-image", "2"], ["api.example.org", "--allow-upload"]),
    (["--per-image", "2", "--per-class", "3"], ["--per-class", "--per-image"]),
    (["--per-image", "2", "--model", "m"], ["--model", "image-conditional"]),
    (["--per-image", "2", "--fit-epochs", "3"], ["--fit-epochs"]),
    (["--per-image", "2", "--splits", "train,nope"], ["--splits", "'nope'"]),
    (["--per-image", "2", "--concurrency", "0"], ["--concurrency"]),
    (["--per-image", "2", "--max-requests", "0"], ["--max-requests"]),
    ([], ["--per-image", "--per-class"]),
])
def test_image_conditional_option_errors(run, small16, tmp_path, hosted, args, words):
    out = tmp_path / "o"
    result = run("generate", small16, "-o", out, "--generator", "hosted", *args)
    assert_usage_error(result, out, *words)


def test_size_the_generator_cannot_make(run, tmp_path):
    data = make_dataset(tmp_path / "d", {"a": [("train", 24)] * 4})
    out = tmp_path / "o"
    result = run("generate", data, "-o", out, "--generator", "acgan", "--per-class", "2")
    assert_usage_error(result, out, "acgan", "multiples of 16", "preprocess")


def test_real_breastmnist_with_ddpm(run, tmp_path):
    """Real 28 px ultrasound images (MedMNIST): ddpm fits any even size; the GANs refuse 28 px."""
    import numpy as np

    from synthmed.data import DatasetWriter
    from conftest import shared_data

    arrays = np.load(shared_data("medmnist", "breastmnist.npz"))
    images, labels = arrays["train_images"], arrays["train_labels"].reshape(-1)
    data = tmp_path / "breast"
    with DatasetWriter(data, classes=["malignant", "benign"], command="test") as writer:
        for label in (0, 1):
            for i in np.flatnonzero(labels == label)[:24]:
                writer.add_image(images[i], id=f"b{i}", label=["malignant", "benign"][label], split="train")
    out = tmp_path / "syn"
    result = run("generate", data, "-o", out, "--generator", "ddpm", *TINY["ddpm"], "--fit-epochs", "1",
                 "--per-class", "2", "--json", "-q")
    assert result.code == 0, result.err
    quality = json.loads(result.out)["quality"]
    assert quality["overall"]["synthetic"] == 4
    assert quality["classes"]["benign"]["real_train"] == 24
    result = run("generate", data, "-o", tmp_path / "gan", "--generator", "acgan", "--per-class", "2")
    assert result.code == 2 and "multiples of 16" in result.err


def test_sampling_arguments_override_a_saved_ddpm(run, small16, tmp_path):
    fitted = tmp_path / "fitted"
    assert run("generate", small16, "-o", fitted, "--generator", "ddpm", *TINY["ddpm"], "--fit-epochs", "1",
               "--fit-only", "--classes", "MildDemented").code == 0
    config = json.loads((fitted / "model" / "config.json").read_text())
    assert config["args"] == {"preset": "tiny", "batch_size": 32, "steps": 3}
    assert config["fitted_classes"] == ["MildDemented"]
    digests = {}
    for steps in ("2", "3"):
        out = tmp_path / f"s{steps}"
        result = run("generate", small16, "-o", out, "--generator", "ddpm", "--model", fitted, "--classes",
                     "MildDemented", "--per-class", "2", "--steps", steps, "--guidance", "1", "-q")
        assert result.code == 0, result.err
        digests[steps] = [r["sha256"] for r in rows_of(out)]
        assert json.loads((out / "dataset.json").read_text())["generation"]["args"] == {"steps": int(steps), "guidance": 1.0}
    assert digests["2"] != digests["3"]


def test_quality_verdicts_warn_and_strict_quality_fails_with_nothing_written(run, small16, tmp_path):
    # A 1-epoch GAN is far from the real images: verdicts are not ok, and each is a warning line.
    args = ["generate", small16, "--generator", "dcgan", *TINY["dcgan"], "--fit-epochs", "1",
            "--classes", "NonDemented,MildDemented", "--per-class", "4"]
    result = run(*args, "-o", tmp_path / "syn")
    assert result.code == 0, result.err
    quality = json.loads((tmp_path / "syn" / "quality.json").read_text())
    assert quality["features"]["space"].startswith("domain encoder")
    for label in ("NonDemented", "MildDemented"):
        stats = quality["classes"][label]
        assert stats["verdict"] in ("ok", "collapsed", "copies", "off-distribution")
        assert {"fid", "kid", "precision", "recall", "density", "coverage"} <= set(stats["features"])
        assert stats["features"]["images"] == {"real": stats["real_train"], "synthetic": 4}
    assert quality["not_ok"], quality["classes"]
    warned = [line for line in result.err.splitlines() if line.startswith("synthmed: warning: class")]
    assert len([w for w in warned if "too few to trust" not in w]) == len(quality["not_ok"])
    assert any("too few to trust" in w for w in warned)  # 4 synthetic images per class
    strict = run(*args, "-o", tmp_path / "strict", "--strict-quality")
    assert strict.code == 1 and "--strict-quality" in strict.err and "nothing written" in strict.err
    assert not (tmp_path / "strict").exists()


def test_a_cached_encoder_of_other_images_is_refitted_and_said_so(small16, tmp_path, monkeypatch):
    import shutil

    from synthmed.data import Dataset
    from synthmed.quality.features import encoder_folder, encoder_for

    monkeypatch.setenv("SYNTHMED_CACHE_DIR", str(tmp_path / "cache"))
    copy = tmp_path / "data"
    shutil.copytree(small16, copy)
    notes: list[str] = []
    encoder_for(Dataset.open(copy), device="cpu", warn=notes.append)
    assert notes == [] and (encoder_folder(Dataset.open(copy)) / "config.json").is_file()
    encoder_for(Dataset.open(copy), device="cpu", warn=notes.append)
    assert notes == []  # the cache is used
    shutil.rmtree(copy)
    make_dataset(copy, {"a": [("train", 16)] * 4, "b": [("train", 16)] * 4})  # other images at the same path
    encoder_for(Dataset.open(copy), device="cpu", warn=notes.append)
    assert len(notes) == 1 and "fitted on other images" in notes[0]


@pytest.mark.parametrize("name,arg", [("dcgan", "width=-4"), ("acgan", "latent_dim=0")])
def test_a_network_size_under_one_is_a_usage_error_with_nothing_left(run, small16, tmp_path, name, arg):
    result = run("generate", small16, "-o", tmp_path / "out", "--generator", name, "-g", arg, "--fit-epochs", 1,
                 "--per-class", 1, "-q")
    assert result.code == 2 and result.err.count("\n") == 1 and "must be a positive integer" in result.err
    assert list(tmp_path.iterdir()) == []

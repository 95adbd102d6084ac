"""The CUDA paths: every command with a device path runs on the GPU, and where the GPU must give
the CPU's answer (inference with the same weights, deterministic transforms) the two are compared.

Skipped where no CUDA device is present. `SYNTHMED_TEST_DEVICE=cpu` runs the same tests with the
CPU as "the device", which checks the tests themselves on a machine without a GPU.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

DEVICE = os.environ.get("SYNTHMED_TEST_DEVICE", "cuda")

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(DEVICE.startswith("cuda") and not torch.cuda.is_available(),
                       reason="no CUDA device here (torch.cuda.is_available() is False)"),
]


# (name, device): the CPU reference and the device under test; names differ when both are the CPU
SIDES = (("cpu", "cpu"), ("device", DEVICE))


def ok(result) -> None:
    assert result.code == 0, result.err


def rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "metadata.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def pixels(folder: Path) -> dict[str, np.ndarray]:
    from PIL import Image

    return {row["id"]: np.asarray(Image.open(folder / row["file_name"])) for row in rows(folder)}


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory, sample_dataset) -> Path:
    """A classifier fitted on the CPU: the same weights for both sides of every comparison."""
    from synthmed.cli import main

    out = tmp_path_factory.mktemp("cuda") / "run"
    assert main(["train", str(sample_dataset), "-o", str(out), "-c", "cnn-basic", "--epochs", "1",
                 "--device", "cpu", "-q"]) == 0
    return out


def test_train_with_mixed_precision_learns_and_evaluates_like_the_cpu(run, sample_dataset, tmp_path):
    out = tmp_path / "run"
    ok(run("train", sample_dataset, "-o", out, "-c", "cnn-basic", "--epochs", 2, "--device", DEVICE, "-q"))
    with open(out / "history.csv", newline="") as handle:
        losses = [float(row["train_loss"]) for row in csv.DictReader(handle)]
    assert len(losses) == 2 and all(np.isfinite(losses))
    # The same weights scored on both devices: predictions agree, the loss nearly so (AMP rounds).
    scores = {}
    for side, device in SIDES:
        result = run("evaluate", out, sample_dataset, "-o", tmp_path / side, "--device", device, "--json", "-q")
        ok(result)
        scores[side] = json.loads(result.out)["summary"]
    assert scores["device"]["accuracy"]["median"] == pytest.approx(scores["cpu"]["accuracy"]["median"], abs=0.02)
    assert scores["device"]["cross_entropy"]["median"] == pytest.approx(scores["cpu"]["cross_entropy"]["median"], rel=0.02)


@pytest.mark.parametrize("generator,fit_args,sample_args", [
    ("ddpm", ["-g", "preset=tiny"], ["--steps", 5]),
    ("dcgan", [], []),
    ("acgan", [], []),
])
def test_generators_fit_and_sample_on_the_device_reproducibly(run, sample_dataset, tmp_path, generator, fit_args,
                                                              sample_args):
    sampling = ["--generator", generator, *sample_args, "--per-class", 2, "--classes", "MildDemented", "--device", DEVICE, "--seed", 3, "-q"]
    ok(run("generate", sample_dataset, "-o", tmp_path / "fit", *fit_args,
           "--fit-epochs", 1, *sampling))
    assert len(pixels(tmp_path / "fit")) == 2
    model = tmp_path / "fit" / "model"
    ok(run("generate", sample_dataset, "-o", tmp_path / "a", "--model", model, *sampling))
    ok(run("generate", sample_dataset, "-o", tmp_path / "b", "--model", model, *sampling))
    first, second = pixels(tmp_path / "a"), pixels(tmp_path / "b")
    assert first.keys() == second.keys() and len(first) == 2
    assert all(image.std() > 0 for image in first.values()), "blank samples"
    assert all(np.array_equal(first[key], second[key]) for key in first), "same seed, different samples on the device"


def test_augment_on_the_device_gives_the_cpu_bytes_for_a_deterministic_policy(run, sample_dataset, tmp_path):
    images = {}
    for side, device in SIDES:
        out = tmp_path / side
        ok(run("augment", sample_dataset, "-o", out, "--policy", "hflip(p=1.0)", "--copies", 1, "--device", device, "-q"))
        images[side] = pixels(out)
    assert images["cpu"].keys() == images["device"].keys() and images["cpu"]
    assert all(np.array_equal(images["cpu"][key], images["device"][key]) for key in images["cpu"])


def test_random_augmentation_runs_on_the_device(run, sample_dataset, tmp_path):
    ok(run("augment", sample_dataset, "-o", tmp_path / "out", "--policy", "medical", "--copies", 1,
           "--device", DEVICE, "--seed", 1, "-q"))
    assert len(pixels(tmp_path / "out")) > len(rows(sample_dataset)) - 1


def test_gradcam_maps_on_the_device_match_the_cpu(run, cpu_run, sample_dataset, tmp_path):
    from safetensors.numpy import load_file

    maps = {}
    for side, device in SIDES:
        out = tmp_path / side
        ok(run("gradcam", cpu_run, sample_dataset, "-o", out, "--limit", 2, "--no-figures", "--device", device, "-q"))
        maps[side] = {path.relative_to(out): next(iter(load_file(str(path)).values()))
                        for path in sorted((out / "maps").rglob("*.safetensors"))}
    assert maps["cpu"] and maps["cpu"].keys() == maps["device"].keys()
    for key, cpu_map in maps["cpu"].items():
        np.testing.assert_allclose(maps["device"][key], cpu_map, atol=2e-2)


def test_interpolants_on_the_device_match_the_cpu(run, sample_dataset, tmp_path):
    fitted = tmp_path / "fitted"
    common = ["--per-class", 1, "--seed", 2, "-q"]
    ok(run("interpolate", sample_dataset, "-o", fitted, "--fit-epochs", 1, "--device", "cpu", *common))
    images = {}
    for side, device in SIDES:
        out = tmp_path / side
        ok(run("interpolate", sample_dataset, "-o", out, "--model", fitted / "model", "--device", device, *common))
        images[side] = pixels(out)
    assert images["cpu"] and images["cpu"].keys() == images["device"].keys()
    for key, image in images["cpu"].items():
        # one grey level of rounding between float kernels of the two devices
        assert np.abs(images["device"][key].astype(int) - image.astype(int)).max() <= 1


def test_sixteen_bit_images_interpolate_on_the_device(run, tmp_path):
    from synthmed.data import Dataset, DatasetWriter

    rng = np.random.default_rng(0)
    with DatasetWriter(tmp_path / "data", classes=["a", "b"], command="test") as writer:
        for i in range(12):
            writer.add_image(rng.integers(0, 65536, (16, 16), dtype=np.uint16), id=f"i{i}", label="ab"[i % 2],
                             split="val" if i >= 10 else "train")
    out = tmp_path / "out"
    ok(run("interpolate", tmp_path / "data", "-o", out, "--fit-epochs", 1, "--per-class", 2, "--device", DEVICE, "-q"))
    made = Dataset.open(out)
    assert made.bit_depth == 16
    assert made.load_images(made.rows).max() > 255

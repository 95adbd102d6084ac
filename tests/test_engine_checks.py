"""Each option is checked once, in the engine: the Python API refuses exactly what the command
line refuses, with the same one-line message, and neither writes anything."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gen_helpers import inline_generator
from synthmed.errors import UsageError


class Mirror:
    """An image-conditional generator that answers each task with its source."""

    name = "mirror"
    version = "1"
    upload_host = None

    def columns(self):
        return {}

    def vary(self, tasks, *, device, concurrency):
        for task in tasks:
            yield task, np.ascontiguousarray(task.pixels)


@pytest.fixture
def mirror():
    with inline_generator("mirror", Mirror, conditioning="image") as entry:
        yield entry


def variation_request(sample_dataset, entry, out, **options):
    from synthmed.data import Dataset
    from synthmed.generate.job import VariationRequest

    return VariationRequest(dataset=Dataset.open(sample_dataset), entry=entry, out=out, args={}, classes=None,
                            counts=None, per_image=1, splits=("train",), seed=0, device_spec="cpu", **options)


def class_request(sample_dataset, out, **options):
    from synthmed.data import Dataset
    from synthmed.generate.job import ClassRequest
    from synthmed.generate.plan import generator_entry

    return ClassRequest(dataset=Dataset.open(sample_dataset), entry=generator_entry("acgan"), out=out, args={},
                        classes=["NonDemented"], counts={"NonDemented": 2}, seed=0, device_spec="cpu", **options)


def refused(call) -> str:
    with pytest.raises(UsageError) as error:
        call()
    return str(error.value)


def assert_same_refusal(run, cli_args, api_call, out: Path, words: str) -> None:
    result = run(*cli_args)
    assert result.code == 2, result.err
    message = result.err.strip().removeprefix("synthmed: error: ")
    assert words in message and message == refused(api_call)
    assert not out.exists() and not (out.parent / f".{out.name}.partial").exists()


@pytest.mark.parametrize("option, value, field, words", [
    ("--concurrency", "0", {"concurrency": 0}, "--concurrency 0: must be at least 1"),
    ("--max-requests", "0", {"max_requests": 0}, "--max-requests 0: must be at least 1"),
    ("--copy-threshold", "-1", {"copy_threshold": -1.0}, "--copy-threshold must be >= 0"),
])
def test_image_conditional_generation(run, sample_dataset, mirror, tmp_path, option, value, field, words):
    from synthmed.generate.job import run_variation_generation

    out = tmp_path / "out"
    cli = ["generate", sample_dataset, "-o", out, "--generator", "mirror", "--per-image", "1", option, value]
    api = lambda: run_variation_generation(variation_request(sample_dataset, mirror, out, **field))  # noqa: E731
    assert_same_refusal(run, cli, api, out, words)


@pytest.mark.parametrize("option, value, field, words", [
    ("--copy-threshold", "-1", {"copy_threshold": -1.0}, "--copy-threshold must be >= 0"),
    ("--fit-epochs", "0", {"fit_epochs": 0}, "--fit-epochs must be at least 1"),
])
def test_class_conditional_generation(run, sample_dataset, tmp_path, option, value, field, words):
    from synthmed.generate.job import run_class_generation

    out = tmp_path / "out"
    cli = ["generate", sample_dataset, "-o", out, "--generator", "acgan", "--classes", "NonDemented",
           "--per-class", "2", option, value]
    api = lambda: run_class_generation(class_request(sample_dataset, out, **field))  # noqa: E731
    assert_same_refusal(run, cli, api, out, words)


def test_interpolate_with_a_model_takes_no_fit_epochs(run, sample_dataset, tmp_path):
    from synthmed.interpolate.job import InterpolationSettings, prepare

    out, model = tmp_path / "out", tmp_path / "model"
    cli = ["interpolate", sample_dataset, "-o", out, "--model", model, "--fit-epochs", "3"]
    settings = InterpolationSettings(dataset=sample_dataset, out=out, model_dir=model, fit_epochs=3)
    assert_same_refusal(run, cli, lambda: prepare(settings), out, "--fit-epochs and --model")


def test_evaluate_batch_size(run, sample_dataset, tmp_path):
    from synthmed.evaluate.job import evaluate

    out, runs = tmp_path / "out", tmp_path / "run"
    cli = ["evaluate", runs, sample_dataset, "-o", out, "--batch-size", "0"]
    api = lambda: evaluate(runs, sample_dataset, out, batch_size=0)  # noqa: E731
    assert_same_refusal(run, cli, api, out, "--batch-size 0: must be at least 1")


def test_preprocess_workers(run, sample_dataset, tmp_path):
    from synthmed.preprocess.options import build_config

    out = tmp_path / "out"
    cli = ["preprocess", sample_dataset / "train", "-o", out, "--workers", "0"]
    defaults = dict(size=None, fit="pad", mode="auto", bit_depth=8, intensity="auto", percentiles="0.5,99.5",
                    window=None, crop=False, crop_threshold="otsu", crop_margin=0.02, opening=0, closing=0, axis=2,
                    slices=None, min_foreground=0.01, volume_index=None, label_regex=None, default_label=None,
                    labels_csv=None, subject_regex=None, classes=None, class_names=None, split_fractions=None, seed=0,
                    shard=None, strict=False)
    api = lambda: build_config(inputs=[sample_dataset / "train"], workers=0, **defaults)  # noqa: E731
    assert_same_refusal(run, cli, api, out, "--workers 0: must be at least 1")

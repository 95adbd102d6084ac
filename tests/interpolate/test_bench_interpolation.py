"""The dataset-building parts of benchmarks/bench_interpolation.py (training comes from `train`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from synthmed.data import Dataset, origins_of

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_interpolation.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_interpolation", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def interpolants(sample_dataset, tmp_path_factory) -> Path:
    from synthmed.cli import main

    out = tmp_path_factory.mktemp("bench") / "interpolants"
    assert main(["interpolate", str(sample_dataset), "-o", str(out), "--fit-epochs", "1", "--per-class", "2",
                 "--device", "cpu", "-q"]) == 0
    return out


def test_pixel_mixup_is_the_weighted_mean(bench):
    parents = np.array([[[[0, 100]]], [[[200, 255]]]], dtype=np.uint8)
    mixed = bench.pixel_mixup(parents, np.array([0.75, 0.25]))
    assert mixed.dtype == np.uint8 and mixed.tolist() == [[[50, 139]]]


def test_mixup_and_augmented_sets_use_the_same_parents_and_keep_real_rows(bench, sample_dataset, interpolants, tmp_path):
    real = Dataset.open(sample_dataset)
    interp = Dataset.open(interpolants)
    augmented = Dataset.open(bench.augmented_dataset(sample_dataset, interpolants, tmp_path / "interp"))
    mixup = Dataset.open(bench.mixup_dataset(sample_dataset, interpolants, tmp_path / "mixup"))
    for built in (augmented, mixup):
        assert len(built.rows) == len(real.rows) + len(interp.rows)
        assert {r["id"]: r["sha256"] for r in built.rows if r["source"] == "real"} == {r["id"]: r["sha256"] for r in real.rows}
        assert all(r["split"] == "train" for r in built.rows if r["source"] == "synthetic")
    by_id = {r["id"]: r for r in real.rows}
    made = {r["id"]: r for r in mixup.rows if r["source"] == "synthetic"}
    for row in interp.rows:
        twin = made[f"{row['id']}-mixup"]
        assert twin["origin"] == row["origin"] and twin["weights"] == row["weights"] and twin["label"] == row["label"]
        parents = real.load_images([by_id[p] for p in origins_of(row)]).astype(float)
        weights = [float(w) for w in row["weights"].split(";")]
        expected = np.tensordot(weights, parents, axes=1)
        assert np.abs(mixup.load_images([twin]).astype(float)[0] - expected).max() <= 0.5 + 1e-9


def test_benchmark_stops_clearly_without_train(bench):
    with pytest.raises(SystemExit, match="not available in this checkout"):
        bench.require_commands(["no-such-command"])

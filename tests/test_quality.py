"""The quality report's numbers on constructed cases."""

from __future__ import annotations

import numpy as np
import pytest

from synthmed.quality import contact_sheet, flat_pixels, mean_pairwise_distance, nearest, quality_report


def nearest_distances(images, reference, **kwargs):
    return nearest(flat_pixels(images), flat_pixels(reference), **kwargs)[0]


def images(*values, side=8):
    return np.stack([np.full((1, side, side), v, dtype=np.uint8) for v in values])


def test_exact_and_near_copies_count_as_near_copies():
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (5, 1, 8, 8), dtype=np.uint8)
    copy = real[2].copy()
    nudged = np.clip(real[3].astype(int) + 1, 0, 255).astype(np.uint8)  # one grey level off
    far = 255 - real[0]
    synthetic = np.stack([copy, nudged, far])
    nearest = nearest_distances(synthetic, real)
    assert nearest[0] == 0.0
    assert 0 < nearest[1] <= 1 / 255 + 1e-9
    assert nearest[2] > 0.1
    report = quality_report({"a": synthetic}, {"a": real}, classes=["a"], copy_threshold=0.02)
    stats = report["classes"]["a"]
    assert stats["near_copies"] == 2 and report["overall"]["near_copies"] == 2
    assert min(stats["nearest_real"]["values"]) == 0.0
    assert stats["label_fidelity"] is None


def test_memorisation_looks_at_every_real_class():
    real = {"a": images(0, 0), "b": images(200, 200)}
    report = quality_report({"a": images(200)}, real, classes=["a", "b"])
    assert report["classes"]["a"]["near_copies"] == 1  # a copy of a "b" image is still a copy


def test_distances_and_diversity():
    # Black against white is distance 1; black against mid-grey (51) is 0.2.
    assert nearest_distances(images(0), images(255))[0] == pytest.approx(1.0)
    assert mean_pairwise_distance(images(0, 255)) == pytest.approx(1.0)
    assert mean_pairwise_distance(images(0, 0, 0)) == 0.0
    # Three images at 0, 51, 102: pair distances 0.2, 0.4, 0.2 -> mean 0.8 / 3.
    assert mean_pairwise_distance(images(0, 51, 102)) == pytest.approx(0.8 / 3)
    assert mean_pairwise_distance(images(0)) is None
    report = quality_report({"a": images(0, 0, 0)}, {"a": images(0, 51, 102)}, classes=["a"])
    diversity = report["classes"]["a"]["diversity"]
    assert diversity["synthetic"] == 0.0 and diversity["ratio"] == 0.0
    assert diversity["real"] == pytest.approx(0.8 / 3, abs=1e-6)
    # Leave-one-out nearest real neighbour: 0.2 for every real image.
    assert report["classes"]["a"]["real_nearest_real"]["median"] == pytest.approx(0.2, abs=1e-6)


def test_large_images_are_shrunk_but_copies_stay_copies():
    rng = np.random.default_rng(1)
    real = rng.integers(0, 256, (2, 3, 128, 128), dtype=np.uint8)
    assert nearest_distances(real[:1], real)[0] == 0.0


def test_label_fidelity_with_a_constant_judge():
    from gen_helpers import tiny_judge

    judge = tiny_judge(num_classes=2, in_channels=1, image_size=8, favourite=1)
    config = {"classes": ["a", "b"], "image_size": [8, 8], "normalization": {"mean": [0.5], "std": [0.25]}}
    report = quality_report({"a": images(1, 2), "b": images(3, 4, 5)}, {"a": images(9), "b": images(10)},
                            classes=["a", "b"], judge=judge, judge_config=config)
    assert report["classes"]["a"]["label_fidelity"] == 0.0
    assert report["classes"]["b"]["label_fidelity"] == 1.0
    assert report["overall"]["label_fidelity"] == pytest.approx(0.6)


def test_contact_sheet_is_a_labelled_figure():
    fig = contact_sheet(images(255, 255, 255, side=16), images(*range(5), side=16), label="a", verdict="ok",
                        columns=8)
    labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert labels == ["synthetic", "real"]
    assert len([ax for ax in fig.axes if ax.images]) == 3 + 5
    assert fig._suptitle.get_text() == "a: ok"


SUMMARY = {"median", "q1", "q3", "n", "values"}
SHARED = {"synthetic", "nearest_real", "near_copies", "near_copy_share"}


def test_generate_and_interpolate_write_one_quality_layout():
    from synthmed.default_plugins.autoencoders import build_cnn_ae
    from synthmed.interpolate.quality import interpolant_quality

    rng = np.random.default_rng(3)
    real = rng.integers(0, 256, (4, 1, 32, 32), dtype=np.uint8)
    synthetic = np.stack([real[0], 255 - real[1], real[2] // 2])
    generated = quality_report({"a": synthetic}, {"a": real}, classes=["a"])
    model = build_cnn_ae(image_size=32, width=8).eval()
    interpolated = interpolant_quality(model, synthetic, [[0, 1], [1, 2], [2, 3]], real, device="cpu",
                                       labels=["a", "a", "a"])
    for report in (generated, interpolated):
        assert {"distance", "classes", "overall"} <= set(report)
        for measures in (report["classes"]["a"], report["overall"]):
            assert SHARED <= set(measures) and set(measures["nearest_real"]) == SUMMARY
    assert generated["distance"] == interpolated["distance"]
    # One nearest-neighbour search: the same images give the same distances in both reports.
    assert generated["classes"]["a"]["nearest_real"]["values"] == pytest.approx(
        interpolated["classes"]["a"]["nearest_real"]["values"])
    assert generated["overall"]["near_copies"] == interpolated["overall"]["near_copies"] == 1

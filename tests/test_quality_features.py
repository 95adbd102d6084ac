"""Feature-space measures (FID, KID, PRDC), the verdict, and the feature encoder's cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthmed.quality.measures import fid_kid, prdc
from synthmed.quality.report import quality_report
from synthmed.quality.verdict import judge


def cloud(n, dims=8, seed=0, shift=0.0, scale=1.0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, dims, generator=generator, dtype=torch.float64) * scale + shift


def test_fid_of_a_set_against_itself_is_zero_and_grows_with_noise():
    real = cloud(200)
    same = fid_kid(real, real.clone())
    assert same["fid"] == pytest.approx(0.0, abs=1e-6)
    # KID is unbiased: about 0 for another sample of the same distribution.
    other = fid_kid(real, cloud(200, seed=9))
    fids = [fid_kid(real, real + cloud(200, seed=1) * noise)["fid"] for noise in (0.1, 0.5, 1.0, 2.0)]
    assert fids == sorted(fids) and fids[0] > 0 and fids[-1] > 10 * fids[0]
    noisy = fid_kid(real, real + cloud(200, seed=1) * 2.0)
    assert abs(other["kid"]) < 0.1 * noisy["kid"]


def test_fid_is_none_below_two_images():
    assert fid_kid(cloud(1), cloud(10))["fid"] is None


def test_prdc_on_point_clouds_with_known_answers():
    real = cloud(300, dims=2)
    # The same distribution: every score near 1.
    same = prdc(real, cloud(300, dims=2, seed=5))
    assert same["precision"] > 0.85 and same["recall"] > 0.85 and same["coverage"] > 0.85
    assert 0.7 < same["density"] < 1.3
    # Far away: no synthetic point in a real ball, and no real point in a synthetic ball.
    far = prdc(real, cloud(300, dims=2, seed=5, shift=50.0))
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0, "coverage_rows": 300, "k": 5}
    # Collapsed onto the real mean: all precise (dense), little of the real set covered or recalled.
    tight = prdc(real, cloud(300, dims=2, seed=5, scale=0.05))
    assert tight["precision"] == 1.0 and tight["density"] > 1.2
    assert tight["recall"] < 0.2 and tight["coverage"] < 0.3
    # Hand-made: real points on a line 0..9, synthetic at 0 and at 100, k=1.
    line = torch.arange(10, dtype=torch.float64)[:, None]
    scores = prdc(line, torch.tensor([[0.0], [100.0]], dtype=torch.float64), k=1)
    assert scores["precision"] == 0.5  # 0 lies in real balls (radius 1), 100 does not
    # Coverage on equal-size sets: 2 of the 10 real points, whose ball reaches the other one.
    assert scores["coverage_rows"] == 2 and scores["coverage"] in (0.0, 0.5, 1.0)
    # Real 0, 3, 10 have radii 3, 3, 7: synthetic -1 lies in 0's ball, 12 in 10's, none in 3's.
    pairs = prdc(torch.tensor([[0.0], [3.0], [10.0]], dtype=torch.float64),
                 torch.tensor([[-1.0], [100.0], [12.0]], dtype=torch.float64), k=1)
    assert pairs["coverage"] == pytest.approx(2 / 3)
    assert scores["density"] == 1.0  # the synthetic 0 is in 2 balls, 100 in none: (2 + 0) / 2 / 1
    # Each synthetic ball has radius 100 (its one neighbour): every real point is recalled.
    assert scores["recall"] == 1.0


@pytest.mark.parametrize("dims", [2, 32])
def test_coverage_does_not_fall_with_the_synthetic_count_alone(dims):
    # Four times fewer synthetic points of the real distribution: on unequal sets coverage
    # would read 0.68; on equal-size sets (Naeem et al.'s definition) it matches 150 vs 150.
    real, synthetic = cloud(600, dims=dims), cloud(150, dims=dims, seed=5)
    unequal, equal = prdc(real, synthetic), prdc(real[:150], synthetic)
    assert unequal["coverage_rows"] == 150
    assert unequal["coverage"] > 0.9 and abs(unequal["coverage"] - equal["coverage"]) < 0.05
    # More synthetic than real: the synthetic set is the one subsampled.
    assert prdc(synthetic, real)["coverage_rows"] == 150


class Flatten(torch.nn.Module):
    """A stand-in feature space: the pixels themselves, shrunk to 4x4."""

    num_features = 16

    def forward(self, images):
        x = images.float() / 255
        return torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)


def real_images(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 1, 16, 16), dtype=np.uint8)


def test_verdict_flags_a_collapsed_set_and_a_set_of_copies():
    real = real_images()
    fresh = real_images(seed=1)
    collapsed = np.repeat(fresh[:1], 40, axis=0)
    copies = real.copy()
    report = quality_report({"fresh": fresh, "collapsed": collapsed, "copies": copies},
                            {"fresh": real, "collapsed": real, "copies": real},
                            classes=["fresh", "collapsed", "copies"], encoder=Flatten(), feature_space="test")
    verdicts = {label: stats["verdict"] for label, stats in report["classes"].items()}
    assert verdicts == {"fresh": "ok", "collapsed": "collapsed", "copies": "copies"}
    assert report["not_ok"] == {"collapsed": "collapsed", "copies": "copies"}
    assert report["classes"]["copies"]["copies"]["pixel"] == 40
    assert report["classes"]["copies"]["features"]["fid"] == pytest.approx(0.0, abs=1e-6)
    assert report["warnings"] == []
    assert report["thresholds"]["min_trusted_images"] == 20


def test_a_small_class_gets_its_count_and_a_warning():
    real = real_images(6)
    report = quality_report({"a": real_images(6, seed=1)}, {"a": real}, classes=["a"], encoder=Flatten())
    features = report["classes"]["a"]["features"]
    assert features["images"] == {"real": 6, "synthetic": 6} and features["trusted"] is False
    assert len(report["warnings"]) == 1 and "6 real and 6 synthetic" in report["warnings"][0]


def test_a_copy_shifted_by_one_pixel_is_a_feature_copy_not_a_pixel_one():
    stats = {"features": {"diversity": {"ratio": 1.0}, "recall": 0.9, "precision": 0.9, "density": 1.0},
             "diversity": {"ratio": 1.0}, "copies": {"share": 0.5}}
    assert judge(stats)[0] == "copies"
    stats["copies"]["share"] = 0.0
    stats["features"]["precision"] = 0.1
    verdict, problems = judge(stats)
    assert verdict == "off-distribution" and problems == ["precision 0.10"]


def test_a_class_too_small_to_measure_is_unmeasured_not_ok():
    from synthmed.quality.verdict import judge

    one_image = {"diversity": {"ratio": None}, "copies": {"share": 0.0},
                 "features": {"diversity": {"ratio": None}, "recall": None, "precision": None, "density": None}}
    assert judge(one_image) == ("unmeasured", ["too few images to measure"])
    measured = {**one_image, "diversity": {"ratio": 0.9}}
    assert judge(measured) == ("ok", [])


def test_a_class_without_trusted_neighbourhoods_is_never_ok():
    from synthmed.quality.verdict import judge

    # Diverse, no copies, recall and precision 0 on a handful of real images: not judged on
    # those, but not called ok either (noise would look the same).
    small = {"diversity": {"ratio": 0.9}, "copies": {"share": 0.0},
             "features": {"diversity": {"ratio": 0.8}, "recall": 0.0, "precision": 0.0, "density": 0.0, "trusted": False}}
    verdict, problems = judge(small)
    assert verdict == "unmeasured" and "diversity and copies are fine" in problems[0]
    assert judge({**small, "diversity": {"ratio": 0.1}})[0] == "collapsed"
    assert judge({**small, "copies": {"share": 0.5}})[0] == "copies"
    assert judge({**small, "features": {**small["features"], "trusted": True}})[0] == "collapsed"  # recall 0

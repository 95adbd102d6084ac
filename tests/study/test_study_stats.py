"""Paired statistics of a study on constructed result tables with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from synthmed.study.stats import gain, holm, min_wilcoxon_p, overall, paired, verdict


def _compare(scenario, control, metric, alpha=0.05):
    result = paired(scenario, control, metric=metric, seed=0)
    result["p_holm"] = result["p"]
    return result, verdict(result, alpha)


def test_a_shift_larger_than_the_noise_helps():
    rng = np.random.default_rng(0)
    control = 0.6 + rng.normal(0, 0.01, 10)
    scenario = control - 0.1 + rng.normal(0, 0.01, 10)  # cross-entropy 0.1 lower in every repeat
    result, word = _compare(scenario, control, "cross_entropy")
    assert word == "helps"
    assert result["p"] == pytest.approx(2 / 2**10)  # all ten differences negative: the exact test's minimum
    assert result["median_difference"] == pytest.approx(-0.1, abs=0.02)
    low, high = result["ci95"]
    assert low <= result["median_difference"] <= high < 0
    assert result["better"] == "lower"


def test_identical_results_are_no_evidence():
    values = [0.51, 0.48, 0.55, 0.50, 0.47, 0.52]
    result, word = _compare(values, list(values), "cross_entropy")
    assert word == "no evidence" and result["p"] == 1.0 and result["median_difference"] == 0.0
    assert result["ci95"] == [0.0, 0.0]


def test_same_distribution_independent_noise_is_no_evidence():
    rng = np.random.default_rng(1)
    result, word = _compare(0.5 + rng.normal(0, 0.05, 8), 0.5 + rng.normal(0, 0.05, 8), "accuracy")
    assert word == "no evidence" and result["p"] > 0.05


def test_sign_convention_lower_and_higher_is_better():
    control = np.linspace(0.40, 0.49, 10)
    # The scenario's values are 0.05 higher: worse for cross-entropy, better for accuracy.
    _, ce = _compare(control + 0.05, control, "cross_entropy")
    _, acc = _compare(control + 0.05, control, "accuracy")
    _, ece = _compare(control + 0.05, control, "ece")
    assert (ce, acc, ece) == ("hurts", "helps", "hurts")
    assert paired(control + 0.05, control, metric="accuracy")["median_difference"] == pytest.approx(0.05)


def test_bootstrap_is_seeded():
    rng = np.random.default_rng(2)
    a, b = rng.normal(0, 1, 7), rng.normal(0, 1, 7)
    assert paired(a, b, metric="accuracy", seed=3)["ci95"] == paired(a, b, metric="accuracy", seed=3)["ci95"]


def test_too_few_repeats_cannot_reach_significance():
    control = [0.5, 0.6, 0.7, 0.8, 0.9]
    result, word = _compare([v - 0.2 for v in control], control, "cross_entropy")
    assert result["p"] == pytest.approx(min_wilcoxon_p(5)) == pytest.approx(0.0625)
    assert word == "no evidence" and gain(result)


def test_missing_repeats_are_left_out_of_the_pairs():
    result = paired([0.1, None, 0.3], [0.2, 0.2, None], metric="accuracy")
    assert result["n"] == 1 and result["median_difference"] == pytest.approx(-0.1) and result["ci95"] is None


def test_holm_adjustment():
    # m = 4: sorted p 0.01, 0.02, 0.03, 0.04 -> 0.04, 0.06, 0.06, 0.06 (step-down, monotone).
    assert holm([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert holm([0.5, None, 0.9]) == [pytest.approx(1.0), None, pytest.approx(1.0)]
    assert holm([0.001]) == [pytest.approx(0.001)]


def test_overall_verdict_needs_every_guarding_control():
    assert overall({"without": "helps", "oversample": "helps", "steps": "helps", "reference": "no evidence"}) == "helps"
    # The MRI lesson: a gain over real-only that duplicates or more steps explain is no gain.
    assert overall({"without": "helps", "oversample": "no evidence", "steps": "helps"}) == "no evidence"
    assert overall({"without": "helps", "oversample": "helps", "steps": "no evidence"}) == "no evidence"
    assert overall({"without": "hurts", "oversample": "hurts", "steps": "hurts"}) == "hurts"
    assert overall({"reference": "helps"}) == "helps"  # real 0 %: only the 100 % real reference exists

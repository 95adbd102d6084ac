"""BD-rate on constructed rate-distortion curves whose answer is known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest

from synthmed.compress.bd_rate import bd_rate, ms_ssim_db, pareto

RATES = [0.25, 0.5, 1.0, 2.0, 4.0]


def _anchor(quality_of) -> list[tuple[float, float]]:
    return [(r, quality_of(r)) for r in RATES]


@pytest.mark.parametrize("factor", [0.8, 0.5, 1.0, 1.3])
def test_a_curve_needing_a_fixed_fraction_of_the_bits_has_that_bd_rate(factor):
    # A bent curve (not a cubic in log rate): the answer holds for any shape, because the
    # tested curve is the anchor with every rate multiplied by the same factor.
    def psnr(r):
        return 30 + 6 * math.log2(r) - 0.4 * math.log2(r) ** 2 + 2 * math.sin(r)

    anchor = _anchor(psnr)
    test = [(r * factor, q) for r, q in anchor]
    result = bd_rate(anchor, test)
    assert result.percent == pytest.approx((factor - 1) * 100, abs=1e-9)
    assert (result.low, result.high) == pytest.approx((psnr(RATES[0]), psnr(RATES[-1])))


def test_a_quality_shift_gives_the_analytic_rate_difference():
    # Anchor: log(rate) = (q - 30) / 4. The test curve is 1.5 dB better at every rate, so at
    # equal quality it needs exp(-1.5 / 4) of the bits; its points sit at other rates.
    anchor = [(math.exp((q - 30) / 4), q) for q in (24, 28, 32, 36, 40)]
    test = [(r, 30 + 4 * math.log(r) + 1.5) for r in (0.3, 0.7, 1.6, 3.1, 6.0, 9.0)]
    result = bd_rate(anchor, test)
    assert result.percent == pytest.approx((math.exp(-1.5 / 4) - 1) * 100, abs=1e-6)
    # Only the shared quality range counts: the test curve starts higher.
    assert result.low == pytest.approx(test[0][1]) and result.high == pytest.approx(40)


def test_swapping_the_curves_inverts_the_ratio():
    anchor = _anchor(lambda r: 30 + 5 * math.log2(r))
    test = [(r * 0.8, q) for r, q in anchor]
    assert bd_rate(test, anchor).percent == pytest.approx((1 / 0.8 - 1) * 100)


def test_a_point_no_user_would_pick_is_left_out():
    anchor = _anchor(lambda r: 30 + 5 * math.log2(r))
    test = [(r * 0.8, q) for r, q in anchor] + [(3.0, 29.0)]  # more bits than others, worse quality
    assert pareto(test) == sorted((r * 0.8, q) for r, q in anchor)
    assert bd_rate(anchor, test).percent == pytest.approx(-20)


def test_curves_that_cannot_be_compared_say_why():
    anchor = _anchor(lambda r: 30 + 5 * math.log2(r))
    short = bd_rate(anchor, anchor[:3])
    assert short.percent is None and "3 usable points" in short.reason
    apart = bd_rate(anchor, [(r, q + 100) for r, q in anchor])
    assert apart.percent is None and "no quality range" in apart.reason
    lossless = bd_rate(anchor, [(r, None) for r in RATES])
    assert lossless.percent is None


def test_ms_ssim_in_decibels():
    assert ms_ssim_db(0.99) == pytest.approx(20.0)
    assert ms_ssim_db(1.0) is None and ms_ssim_db(None) is None
    values = np.array([0.9, 0.99, 0.999])
    assert np.all(np.diff([ms_ssim_db(v) for v in values]) > 0)

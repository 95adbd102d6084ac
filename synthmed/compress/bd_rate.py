"""Bjontegaard delta rate (BD-rate): the average bitrate difference between two
rate-distortion curves at equal quality, in percent.

The standard computation (Bjontegaard, VCEG-M33, 2001): fit log(rate) as a cubic polynomial
of the quality for each curve, integrate both fits over the quality range the two curves
share, and turn the mean difference of log rates into a percentage. -20 % means the tested
codec needs 20 % fewer bits than the anchor for the same quality, on average over that range.

Written here rather than taken from a package: the PyPI packages for it are small
single-author ones, and the formula is a few lines of numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

MIN_POINTS = 4  # a cubic needs four points


@dataclass(frozen=True)
class BdRate:
    """BD-rate of `test` against `anchor`; `percent` None when the curves cannot be compared
    (`reason` says why)."""

    percent: float | None
    low: float | None = None  # the shared quality range the average runs over
    high: float | None = None
    reason: str = ""


def pareto(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """(rate, quality) points that no other point beats on both, sorted by rate.

    A point with more bits and no more quality than another is one a user would never pick
    (a learned model that fitted worse than its neighbour); the cubic fit needs a monotone curve."""
    front: list[tuple[float, float]] = []
    for rate, quality in sorted((r, q) for r, q in points if r and r > 0 and q is not None and math.isfinite(q)):
        if not front or quality > front[-1][1]:
            front.append((rate, quality))
    return front


def bd_rate(anchor: Sequence[tuple[float, float]], test: Sequence[tuple[float, float]]) -> BdRate:
    """BD-rate (%) of the `test` curve against the `anchor` curve, each a list of
    (rate, quality) points (bpp and PSNR in dB, or bpp and MS-SSIM in dB)."""
    import numpy as np

    curves = []
    for name, points in (("anchor", anchor), ("test", test)):
        front = pareto(points)
        if len(front) < MIN_POINTS:
            return BdRate(None, reason=f"{name} curve has {len(front)} usable points; the cubic fit needs {MIN_POINTS}")
        curves.append(front)
    low = max(min(q for _, q in c) for c in curves)
    high = min(max(q for _, q in c) for c in curves)
    if low >= high:
        return BdRate(None, reason="the curves share no quality range")
    integrals = []
    for front in curves:
        log_rate = np.log([r for r, _ in front])
        quality = np.array([q for _, q in front])
        fit = np.polyint(np.polyfit(quality, log_rate, 3))
        integrals.append(np.polyval(fit, high) - np.polyval(fit, low))
    mean_difference = (integrals[1] - integrals[0]) / (high - low)
    return BdRate(float((math.exp(mean_difference) - 1) * 100), float(low), float(high))


def ms_ssim_db(value: float | None) -> float | None:
    """MS-SSIM on a decibel scale, -10 log10(1 - MS-SSIM): the usual axis for RD curves at
    high quality, where MS-SSIM itself crowds near 1."""
    if value is None or value >= 1:
        return None
    return -10 * math.log10(1 - value)

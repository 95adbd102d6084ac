"""Paired statistics of a scenario against a control over repeats that share seeds: the median
paired difference with a seeded bootstrap 95 % interval (scipy), a two-sided Wilcoxon
signed-rank p-value (scipy), Holm's correction across the scenarios of a study, and a verdict.

Differences are scenario minus control, in the metric's own units; whether a negative
difference is a gain depends on the metric (lower cross-entropy is better, higher accuracy is
better), and `better` says which way it points."""

from __future__ import annotations

import warnings
from typing import Any, Sequence

BOOTSTRAP_RESAMPLES = 9999
VERDICTS = ("helps", "no evidence", "hurts")


def lower_is_better(metric: str) -> bool:
    from synthmed.evaluate.metrics import LOWER_IS_BETTER

    return metric in LOWER_IS_BETTER or metric in ("steps", "epochs_run")


def paired(scenario: Sequence[float | None], control: Sequence[float | None], *, metric: str, seed: int = 0
           ) -> dict[str, Any]:
    """Median paired difference, bootstrap 95 % CI, Wilcoxon p over the repeats both define."""
    import numpy as np
    from scipy import stats

    pairs = [(s, c) for s, c in zip(scenario, control) if s is not None and c is not None]
    diffs = np.array([s - c for s, c in pairs], dtype=float)
    result: dict[str, Any] = {"n": len(diffs), "median_difference": None, "ci95": None, "p": None,
                              "better": "lower" if lower_is_better(metric) else "higher"}
    if len(diffs) == 0:
        return result
    result["median_difference"] = float(np.median(diffs))
    if len(diffs) >= 2:
        if np.all(diffs == diffs[0]):
            result["ci95"] = [float(diffs[0]), float(diffs[0])]
        else:
            # Percentile intervals: BCa is undefined for the few repeats a study affords.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # few distinct values: a coarse interval is still the answer
                ci = stats.bootstrap((diffs,), np.median, n_resamples=BOOTSTRAP_RESAMPLES, confidence_level=0.95,
                                     method="percentile", rng=np.random.default_rng(seed)).confidence_interval
            result["ci95"] = [float(ci.low), float(ci.high)]
    if np.all(diffs == 0):
        result["p"] = 1.0  # identical results: nothing to test
    else:
        result["p"] = float(stats.wilcoxon(diffs, alternative="two-sided").pvalue)
    return result


def min_wilcoxon_p(n: int) -> float:
    """The smallest two-sided p the exact signed-rank test can give with n pairs: 2 / 2^n."""
    return min(1.0, 2.0 / 2**n) if n else 1.0


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment (scipy has none and statsmodels is not a dependency):
    the k-th smallest of m p-values is multiplied by (m - k + 1), then made monotone."""
    order = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(order)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def verdict(comparison: dict[str, Any], alpha: float) -> str:
    """'helps' / 'hurts' when the Holm-adjusted p is below alpha, by the direction of the
    median difference; otherwise 'no evidence'."""
    p, diff = comparison.get("p_holm"), comparison.get("median_difference")
    if p is None or diff is None or p >= alpha or diff == 0:
        return "no evidence"
    gain = diff < 0 if comparison["better"] == "lower" else diff > 0
    return "helps" if gain else "hurts"


def gain(comparison: dict[str, Any]) -> bool:
    """The median difference points the good way (whatever the p-value)."""
    diff = comparison.get("median_difference")
    if diff is None or diff == 0:
        return False
    return diff < 0 if comparison["better"] == "lower" else diff > 0


def overall(verdicts: dict[str, str]) -> str:
    """One verdict per scenario: 'helps' only if it helps against every control that guards
    the claim (same real images, duplicates, same steps: an intersection-union test, which
    needs no further correction); 'hurts' if it hurts against the same real images alone."""
    guards = [verdicts[k] for k in ("without", "oversample", "steps") if k in verdicts]
    if not guards:
        return verdicts.get("reference", "no evidence")
    if all(v == "helps" for v in guards):
        return "helps"
    if verdicts.get("without", verdicts.get("steps")) == "hurts":
        return "hurts"
    return "no evidence"

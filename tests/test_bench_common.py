"""benchmarks/common.py: the turn order of `interleaved`; bench_codec.py: BD-rates summed up over seeds."""

from __future__ import annotations

import importlib.util
import runpy
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
COMMON = BENCHMARKS / "common.py"


@pytest.fixture(scope="module")
def common():
    return SimpleNamespace(**runpy.run_path(str(COMMON)))  # benchmarks/ is not a package


def _recording(calls: list[str], names: str) -> dict:
    def variant(name: str):
        def run() -> float:
            calls.append(name)
            return float(len(calls))  # the position of this call, to check what is recorded where

        return run

    return {name: variant(name) for name in names}


def test_interleaved_keeps_one_order_by_default(common):
    calls: list[str] = []
    times = common.interleaved(_recording(calls, "ab"), 3)
    assert "".join(calls) == "ababab"
    assert times == {"a": [1.0, 3.0, 5.0], "b": [2.0, 4.0, 6.0]}


def test_alternate_reverses_every_other_round(common):
    # ABBA: neither variant always runs right after the other (bench_preprocess: after its clean-up)
    calls: list[str] = []
    times = common.interleaved(_recording(calls, "ab"), 4, alternate=True)
    assert "".join(calls) == "abbaabba"
    assert times == {"a": [1.0, 4.0, 5.0, 8.0], "b": [2.0, 3.0, 6.0, 7.0]}


def test_alternate_with_three_variants(common):
    calls: list[str] = []
    common.interleaved(_recording(calls, "abc"), 3, alternate=True)
    assert "".join(calls) == "abccbaabc"


@pytest.fixture(scope="module")
def bench_codec():
    sys.path.insert(0, str(BENCHMARKS))  # its `from common import ...`
    try:
        spec = importlib.util.spec_from_file_location("bench_codec", BENCHMARKS / "bench_codec.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_bd_rate_spread_over_three_seeds(bench_codec):
    stats = bench_codec.spread([-25.0, -18.1, -21.3], target=-20.0)
    assert stats == {"median": -21.3, "low": -25.0, "high": -18.1, "seeds": 3, "na": 0, "met": 2}
    assert bench_codec.spread_text(stats, target=-20.0) == "median -21.3 % (range -25.0..-18.1, 2/3 seeds <= -20 %)"
    assert bench_codec.spread_text(stats) == "median -21.3 % (range -25.0..-18.1)"


def test_a_seed_without_a_bd_rate_is_left_out_of_the_median_and_misses_the_target(bench_codec):
    # seed 1's curves share no quality range: n/a, not in the median, not among the seeds that meet it
    stats = bench_codec.spread([-30.0, None, -22.0], target=-20.0)
    assert stats == {"median": -26.0, "low": -30.0, "high": -22.0, "seeds": 3, "na": 1, "met": 2}
    assert bench_codec.spread_text(stats, target=-20.0) == (
        "median -26.0 % (range -30.0..-22.0, 2/3 seeds <= -20 %, 1/3 n/a)")
    assert bench_codec.judged(stats["median"]) == "met"
    none = bench_codec.spread([None, None], target=-20.0)
    assert none["median"] is None and none["met"] == 0
    assert bench_codec.spread_text(none, target=-20.0) == "n/a in all 2 seeds"
    assert bench_codec.judged(none["median"]) == "n/a"


def test_the_target_is_judged_on_the_median(bench_codec):
    # one seed meets it by far, the median does not: MISSED
    stats = bench_codec.spread([-25.0, -19.0, -19.5], target=-20.0)
    assert stats["median"] == -19.5 and stats["met"] == 1
    assert bench_codec.judged(stats["median"]) == "MISSED"

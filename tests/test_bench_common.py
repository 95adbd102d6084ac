"""benchmarks/common.py: the turn order of `interleaved`."""

from __future__ import annotations

import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest

COMMON = Path(__file__).resolve().parents[1] / "benchmarks" / "common.py"


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

"""The generator `make demo` draws from makes MildDemented images that pass the quality
verdict: a demo must not add images the tool itself would call collapsed or
off-distribution. Slow: the demo's own fit, about 6 CPU-minutes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[2] / "examples" / "mri-thesis" / "demo.toml"


@pytest.mark.slow
def test_the_demo_source_passes_the_quality_verdict(tmp_path):
    from synthmed.study.run import make_sources, prepare

    # The source exactly as `synthmed study demo.toml` makes it: its counts, seed and folder.
    staging = tmp_path / "staging"
    staging.mkdir()
    context = prepare(DEMO, tmp_path / "out", quick=False, device="cpu", staging=staging)
    context.out.mkdir()
    (name,) = context.study.axes["source"]
    make_sources(context, {name}, notify=lambda level, text: None, must_exist=False)
    report = json.loads((context.source_paths[name] / "quality.json").read_text())
    mild = report["classes"]["MildDemented"]
    assert mild["verdict"] == "ok", mild["problems"]
    assert mild["features"]["trusted"] and mild["synthetic"] >= 90  # judged on as many images as it has real ones
    assert mild["copies"]["either"] == 0
    # 4 real train images: too few to judge, and said so rather than called ok.
    assert report["classes"]["ModerateDemented"]["verdict"] == "unmeasured"

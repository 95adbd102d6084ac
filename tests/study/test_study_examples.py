"""The example studies (one per seed study) run at their --quick size; the documented example
is valid; `extends` builds one study on another."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from study_helpers import one_error_line, write_study

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*/study.toml"))


def test_there_is_one_example_per_seed_study():
    assert [p.parent.name for p in EXAMPLES] == ["acgan-paper", "mri-thesis", "retina-thesis", "unet-report"]
    assert all((p.parent / "README.md").is_file() for p in EXAMPLES)


@pytest.mark.slow
@pytest.mark.parametrize("study", EXAMPLES, ids=lambda p: p.parent.name)
def test_each_example_runs_at_its_quick_size(run, study, tmp_path):
    out = tmp_path / "out"
    result = run("study", study, "-o", out, "--quick", "--json", "--quiet")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["verdicts"] and {v["overall"] for v in summary["verdicts"].values()} <= {
        "helps", "no evidence", "hurts"}
    report = (out / "report.md").read_text()
    from synthmed.study.schema import load_study

    if load_study(study).published:
        # The paper's numbers sit beside the study's, labelled as the paper's.
        assert any(cell["published"] for cell in summary["cells"])
        assert "Published" in report and "not comparable one-to-one" in report


def test_the_demo_extends_the_mri_study():
    from synthmed.study.schema import load_study

    demo = load_study(REPO / "examples" / "mri-thesis" / "demo.toml")
    full = load_study(REPO / "examples" / "mri-thesis" / "study.toml")
    assert demo.name == "mri-thesis-demo" and demo.repeats == 6 and demo.sample == {"size": 32, "scale": 0.2, "seed": 0}
    assert demo.axes["classifier"] == ["cnn-basic"] and demo.primary == full.primary == "cross_entropy"
    assert demo.published == full.published and len(demo.published) == 3  # inherited
    # The demo draws from a generator whose images pass the verdict (tests/generate/test_demo_quality.py).
    assert demo.axes["source"] == ["ddpm"] and demo.sources["ddpm"].target == "ddpm"
    assert demo.sources["ddpm"].args == {"preset": "tiny-noattn", "lr": 1e-3, "batch_size": 16}  # bench_generators' recipe
    assert demo.sources["ddpm"].fit_epochs == 400 and demo.sources["ddpm"].pool == 5


def test_extends_errors_name_the_file_and_line(run, tiny_dataset, tmp_path):
    base = write_study(tmp_path, tiny_dataset, "repeats = 2\n[axes]\nclassifier = [\"nope\"]\n", name="base.toml")
    child = tmp_path / "child.toml"
    child.write_text('extends = "base.toml"\nrepeats = 3\n')
    line = one_error_line(run("study", child, "-o", tmp_path / "out"))
    assert f"{base} line 4" in line and "unknown classifier 'nope'" in line
    child.write_text('extends = "missing.toml"\n')
    assert "child.toml line 1: extends" in one_error_line(run("study", child, "-o", tmp_path / "out"))


def test_the_documented_study_file_is_valid(run, tiny_dataset, tmp_path):
    text = (REPO / "docs" / "study.md").read_text()
    (block,) = re.findall(r"```toml\n(.*?)```", text, flags=re.S)
    assert 'path = "data"' in block
    study = tmp_path / "documented.toml"
    study.write_text(block.replace('path = "data"', f'path = "{tiny_dataset}"')
                     .replace("fit_epochs = 15", "fit_epochs = 1").replace("width = 32", "width = 8"))
    result = run("study", study, "-o", tmp_path / "out", "--dry-run", "--json")
    assert result.code == 0, result.err
    plan = json.loads(result.out)
    roles = {row["role"] for row in plan["cells"]}
    assert {"scenario", "probe"} <= roles and plan["count"] > 8 and not (tmp_path / "out").exists()

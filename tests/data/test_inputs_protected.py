"""An output that is, contains or lies inside an input is refused, with or without --overwrite.

Each case snapshots every file under the test's folder (names and bytes), runs the command
and checks: exit 2, one stderr line, and not one file added, removed or changed anywhere."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest


def snapshot(root: Path) -> dict[str, str]:
    """Every path under root (hidden ones included) -> sha256 of its bytes ('' for folders)."""
    state = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        state[rel] = "" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return state


@pytest.fixture(scope="module")
def world(tmp_path_factory, sample_dataset):
    """A copy of the sample data (D), a one-epoch classifier RUN, a fitted ddpm, its samples (SYN) and a compress output."""
    from synthmed.cli import main

    root = tmp_path_factory.mktemp("protected")
    data = root / "D"
    shutil.copytree(sample_dataset, data)
    assert main(["train", str(data), "-o", str(root / "RUN"), "--epochs", "1", "-q"]) == 0
    assert main(["generate", str(data), "-o", str(root / "GEN"), "--generator", "ddpm", "--fit-only",
                 "--fit-epochs", "1", "-g", "preset=tiny", "-q"]) == 0
    assert main(["generate", str(data), "-o", str(root / "SYN"), "--generator", "ddpm", "--model",
                 str(root / "GEN" / "model"), "--per-class", "1", "--steps", "2", "-q"]) == 0
    assert main(["compress", str(data), "-o", str(root / "PACK"), "--codec", "png", "--splits", "test", "-q"]) == 0
    raw = root / "raw" / "a"
    raw.mkdir(parents=True)
    for row in sorted((data / "train").rglob("*.png"))[:3]:
        shutil.copy(row, raw / row.name)
    wrap = root / "wrap"
    shutil.copytree(data, wrap / "ds")
    return root


CASES = {
    "train D -o D": ["train", "D", "-o", "D", "--epochs", "1", "--overwrite"],
    "train D -o D/run": ["train", "D", "-o", "D/run", "--epochs", "1"],
    "train --weights inside the output": ["train", "D", "-o", "RUN", "--weights", "RUN/model.safetensors", "--overwrite"],
    "evaluate RUN D -o RUN": ["evaluate", "RUN", "D", "-o", "RUN", "--overwrite"],
    "evaluate RUN D -o D/report": ["evaluate", "RUN", "D", "-o", "D/report"],
    "augment D -o D": ["augment", "D", "-o", "D", "--policy", "hflip", "--overwrite"],
    "augment D -o D/sub": ["augment", "D", "-o", "D/sub", "--policy", "hflip"],
    "augment wrap/ds -o wrap": ["augment", "wrap/ds", "-o", "wrap", "--policy", "hflip", "--overwrite"],
    "mix D -o D": ["mix", "D", "-o", "D", "--overwrite"],
    "mix D SYN -o SYN": ["mix", "D", "SYN", "-o", "SYN", "--overwrite"],
    "preprocess raw -o raw/out": ["preprocess", "raw", "-o", "raw/out"],
    "preprocess raw -o raw": ["preprocess", "raw", "-o", "raw", "--overwrite"],
    "generate D -o D": ["generate", "D", "-o", "D", "--generator", "ddpm", "--per-class", "1", "--fit-epochs", "1",
                        "--overwrite"],
    "generate --model GEN/model -o GEN": ["generate", "D", "-o", "GEN", "--generator", "ddpm", "--per-class", "1",
                                          "--model", "GEN/model", "--overwrite"],
    "generate --judge RUN -o RUN/x": ["generate", "D", "-o", "RUN/x", "--generator", "ddpm", "--per-class", "1",
                                      "--model", "GEN/model", "--judge", "RUN"],
    "gradcam RUN D -o RUN": ["gradcam", "RUN", "D", "-o", "RUN", "--overwrite"],
    "gradcam RUN D -o D/cams": ["gradcam", "RUN", "D", "-o", "D/cams"],
    "interpolate D -o D": ["interpolate", "D", "-o", "D", "--fit-epochs", "1", "--per-class", "1", "--overwrite"],
    "compress D -o D": ["compress", "D", "-o", "D", "--codec", "png", "--overwrite"],
    "compress --decode PACK -o PACK/restored": ["compress", "--decode", "PACK", "-o", "PACK/restored"],
}


@pytest.mark.parametrize("args", list(CASES.values()), ids=list(CASES))
def test_output_over_an_input_is_refused_and_nothing_changes(world, run, args, monkeypatch):
    monkeypatch.chdir(world)
    before = snapshot(world)
    result = run(*args, "-q")
    assert result.code == 2, result.err
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err
    assert "inputs are never changed" in result.err
    assert snapshot(world) == before


def test_dot_output_from_inside_the_input(world, run, monkeypatch):
    """`cd D && synthmed augment . -o . --overwrite` used to leave a `..partial` inside D."""
    monkeypatch.chdir(world / "D")
    before = snapshot(world)
    result = run("augment", ".", "-o", ".", "--policy", "hflip", "--overwrite", "-q")
    assert result.code == 2 and "is the input" in result.err
    assert snapshot(world) == before


def test_a_symbolic_link_to_the_input_is_the_input(world, run, tmp_path):
    link = tmp_path / "alias"
    os.symlink(world / "D", link)
    before = snapshot(world)
    result = run("augment", world / "D", "-o", link, "--policy", "hflip", "--overwrite", "-q")
    assert result.code == 2 and "is the input" in result.err
    assert snapshot(world) == before


def test_the_library_refuses_it_too(world):
    from synthmed.data import OutputFolder
    from synthmed.errors import UsageError

    with pytest.raises(UsageError, match="lies inside the input"):
        OutputFolder(world / "D" / "x", inputs=[world / "D"])
    assert not (world / "D" / ".x.partial").exists()

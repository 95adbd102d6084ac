"""A command killed at any file-system step it takes in its unfinished output resumes, with
`--resume`, into the folder an uninterrupted run writes. tests/die_at_step.py kills a real
process just before its Nth write, rename or removal there; every N is tried for train,
and the first steps plus a stride through the rest for commands that write one file per image."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from synthmed.data import partial_path

pytestmark = pytest.mark.slow

DIE_AT_STEP = Path(__file__).resolve().parents[1] / "die_at_step.py"
TINY_CLASSIFIER = ("--classifier-arg", "conv_channels=[4, 8]", "--classifier-arg", "hidden=[16]")
# command line (OUT as "out") and which steps to try: every one, or the first 12 then every 23rd
COMMANDS = {
    "train": (["train", "{data}", "-o", "out", "--epochs", "2", "--patience", "9", *TINY_CLASSIFIER], range(1, 10_000)),
    "augment": (["augment", "{data}", "-o", "out", "--policy", "hflip(p=0.5)", "--copies", "1",
                 "--batch-size", "64", "--splits", "val"], [*range(1, 13), *range(13, 10_000, 23)]),
}


def _synthmed(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    command = [sys.executable, *([str(DIE_AT_STEP)] if env else ["-m", "synthmed"]), *args]
    return subprocess.run(command, check=False, capture_output=True, text=True, cwd=cwd, env={**os.environ, **env})


@pytest.mark.parametrize("command", list(COMMANDS))
def test_killed_at_any_step_resume_gives_the_uninterrupted_output(sample_dataset, tmp_path, command):
    from same_outputs import assert_same_outputs

    template, steps = COMMANDS[command]
    args = [part.format(data=sample_dataset) for part in template] + ["--device", "cpu", "-q"]
    whole = _synthmed([("whole" if part == "out" else part) for part in args], tmp_path)
    assert whole.returncode == 0, whole.stderr
    tried = []
    for step in steps:
        died = _synthmed(args, tmp_path, DIE_AT=str(step), DIE_UNDER=str(partial_path(tmp_path / "out")))
        if died.returncode == 0:  # fewer steps than `step`: every one has been tried
            break
        assert died.returncode == 137 and "died at step" in died.stderr, died.stderr
        assert not (tmp_path / "out").exists()
        resumed = _synthmed([*args, "--resume"], tmp_path)
        assert resumed.returncode == 0, (died.stderr, resumed.stderr)
        try:
            assert_same_outputs(tmp_path / "whole", tmp_path / "out")
        except AssertionError as error:
            raise AssertionError(f"{died.stderr.strip()}: {error}") from None
        assert not partial_path(tmp_path / "out").exists()
        tried.append(died.stderr.strip().splitlines()[-1])
        shutil.rmtree(tmp_path / "out")
    assert len(tried) >= 8 and any("rename" in line or "replace" in line for line in tried), tried

"""Ctrl-C (SIGINT, exit 130) and SIGTERM (exit 143) print one line saying what was kept and the
exact command that resumes; after SIGKILL (no handler runs) `--resume` still continues. Each
resumed output equals an uninterrupted one. Real processes, real signals."""

from __future__ import annotations

import csv
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synthmed.data import partial_path

pytestmark = pytest.mark.slow

SMALL_TRAIN = ("--epochs", "4", "--patience", "9", "--device", "cpu", "-q",
               "--classifier-arg", "conv_channels=[4, 8]", "--classifier-arg", "hidden=[16]")


def _start(args, cwd: Path, until: Path) -> subprocess.Popen:
    """Start `synthmed ARGS` and return once `until` exists (the process still running)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "synthmed", *map(str, args)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    deadline = time.monotonic() + 180
    while not until.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, process.communicate()
    return process


def _stop(process: subprocess.Popen, signum: int) -> str:
    process.send_signal(signum)
    _, err = process.communicate(timeout=180)
    assert process.returncode == (128 + signum if signum != signal.SIGKILL else -signal.SIGKILL), err
    assert "Traceback" not in err
    return err


def _resume_line(err: str) -> list[str]:
    """The one line printed on the signal: `... continue with: synthmed ... --resume`, as argv."""
    last = err.strip().splitlines()[-1]
    assert last.startswith("synthmed: error: ") and "continue with: " in last, err
    return shlex.split(last.split("continue with: ", 1)[1])


def _run(argv, cwd: Path) -> None:
    assert argv[0] == "synthmed"
    done = subprocess.run([sys.executable, "-m", "synthmed", *argv[1:]], capture_output=True, text=True, cwd=cwd)
    assert done.returncode == 0, done.stderr


def _rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "metadata.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _same_dataset(a: Path, b: Path) -> None:
    rows = _rows(a)
    assert rows == _rows(b) and rows
    for row in rows:
        assert (a / row["file_name"]).read_bytes() == (b / row["file_name"]).read_bytes(), row["file_name"]


def test_sigterm_on_train_names_the_resume_command_which_finishes_the_same_run(sample_dataset, tmp_path):
    args = ["train", sample_dataset, "-o", "run", "--repeats", "2", *SMALL_TRAIN]
    whole = subprocess.run([sys.executable, "-m", "synthmed", *map(str, args[:3]), "whole", *map(str, args[4:])],
                           capture_output=True, text=True, cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    process = _start(args, tmp_path, partial_path(tmp_path / "run") / "run-01" / "config.json")
    err = _stop(process, signal.SIGTERM)
    assert f"kept in {partial_path(Path('run'))}" in err.strip().splitlines()[-1]
    again = _resume_line(err)
    assert again == ["synthmed", *map(str, args), "--resume"]
    _run(again, tmp_path)
    for name in ("run-01", "run-02"):
        assert (tmp_path / "run" / name / "model.safetensors").read_bytes() == \
            (tmp_path / "whole" / name / "model.safetensors").read_bytes()


def test_sigint_on_augment_exits_130_and_its_command_resumes(sample_dataset, tmp_path):
    args = ["augment", sample_dataset, "-o", "aug", "--policy", "hflip(p=0.5)", "--copies", "3",
            "--batch-size", "4", "--device", "cpu", "-q"]
    process = _start(args, tmp_path, partial_path(tmp_path / "aug") / "rows.jsonl")
    err = _stop(process, signal.SIGINT)
    _run(_resume_line(err), tmp_path)
    _run(["synthmed", *map(str, args[:3]), "whole", *map(str, args[4:])], tmp_path)
    _same_dataset(tmp_path / "whole", tmp_path / "aug")


def test_sigint_on_an_output_that_cannot_resume_says_nothing_was_kept(tmp_path):
    process = _start(["sample-data", "-o", "s", "--size", "64", "--scale", "1", "-q"], tmp_path,
                     partial_path(tmp_path / "s"))
    err = _stop(process, signal.SIGINT)
    assert err.strip().splitlines() == [
        "synthmed: error: interrupted; nothing was kept (an unfinished output that cannot be resumed is removed); "
        "rerun the command to start over"]
    assert not (tmp_path / "s").exists() and not partial_path(tmp_path / "s").exists()


TINY_CLASSIFIER = ("--classifier-arg", "conv_channels=[4, 8]", "--classifier-arg", "hidden=[16]")
# command line (OUT as "out") and the file whose appearance means "part done"
KILLED = {
    "interpolate": (["interpolate", "{data}", "-o", "out", "--fit-epochs", "2", "--per-class", "3", "-a", "width=8",
                     "--lr", "0.01"], "rows.jsonl"),
    "generate": (["generate", "{data}", "-o", "out", "--generator", "dcgan", "-g", "width=8", "-g", "batch_size=16",
                  "--fit-epochs", "3", "--fit-only"], "fit-state/fit-state.safetensors"),
    "compress": (["compress", "{data}", "-o", "out", "--codec", "learned-factorized=1", "--fit-epochs", "1",
                  "--splits", "test", "--report-split", "test"], "models/learned-factorized-q1/config.json"),
    "train": (["train", "{data}", "-o", "out", "--epochs", "3", "--patience", "9", *TINY_CLASSIFIER],
              ".run-01.partial/fit-state.safetensors"),
}


@pytest.mark.parametrize("command", list(KILLED))
def test_sigkill_then_resume_equals_an_uninterrupted_run(sample_dataset, tmp_path, command):
    from same_outputs import assert_same_outputs

    template, marker = KILLED[command]
    args = [part.format(data=sample_dataset) for part in template] + ["--device", "cpu", "-q"]
    whole = [("whole" if part == "out" else part) for part in args]
    _run(["synthmed", *whole], tmp_path)
    process = _start(args, tmp_path, partial_path(tmp_path / "out") / marker)
    _stop(process, signal.SIGKILL)
    assert not (tmp_path / "out").exists() and partial_path(tmp_path / "out").is_dir()
    _run(["synthmed", *args, "--resume"], tmp_path)
    assert_same_outputs(tmp_path / "whole", tmp_path / "out")
    assert not partial_path(tmp_path / "out").exists()


def test_sigkill_then_resume_gives_gradcam_the_maps_of_an_uninterrupted_run(sample_dataset, tmp_path):
    from same_outputs import assert_same_outputs

    _run(["synthmed", "train", sample_dataset, "-o", "run", "--epochs", "1", *TINY_CLASSIFIER, "--device", "cpu", "-q"],
         tmp_path)
    args = ["gradcam", "run", sample_dataset, "-o", "out", "--splits", "train,val,test", "--batch-size", "4",
            "--no-figures", "--device", "cpu", "-q"]
    _run(["synthmed", *[("whole" if part == "out" else part) for part in args]], tmp_path)
    process = _start(args, tmp_path, partial_path(tmp_path / "out") / "maps" / "train")
    _stop(process, signal.SIGKILL)
    assert not (tmp_path / "out").exists() and partial_path(tmp_path / "out").is_dir()
    _run(["synthmed", *args, "--resume"], tmp_path)
    assert_same_outputs(tmp_path / "whole", tmp_path / "out")

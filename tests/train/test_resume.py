"""`train --resume` and `train --shard K/N`: an interrupted RUN continues after its last finished
repeat (and a repeat from its last epoch) into the bytes an uninterrupted run writes; shards
taken together by `evaluate` equal the whole run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from synthmed.data import partial_path
from synthmed.progress import Advanced

SMALL = ("--classifier-arg", "conv_channels=[4, 8]", "--classifier-arg", "hidden=[16]")
ARGS = ("--epochs", "3", "--patience", "9", "--batch-size", "32", "--device", "cpu", "--quiet", *SMALL)


def _interrupt_after(epochs: int):
    """A progress receiver that stops the run (as Ctrl-C does) after `epochs` finished epochs."""
    seen = []

    def receive(event):
        if isinstance(event, Advanced):
            seen.append(event)
            if len(seen) == epochs:
                raise KeyboardInterrupt

    return receive


def _train_interrupted(dataset: Path, out: Path, *, repeats: int, epochs: int) -> None:
    import torch

    from synthmed.train.run import train_run
    from synthmed.train.settings import TrainSettings

    settings = TrainSettings(epochs=3, patience=9, classifier_args={"conv_channels": [4, 8], "hidden": [16]})
    with pytest.raises(KeyboardInterrupt):
        train_run(dataset, out, settings, repeats=repeats, device=torch.device("cpu"), progress=_interrupt_after(epochs))


def _history(folder: Path) -> list[dict[str, str]]:
    with open(folder / "history.csv", newline="") as handle:
        return [{k: v for k, v in row.items() if "seconds" not in k} for row in csv.DictReader(handle)]


def _same_run(a: Path, b: Path) -> None:
    """Equal model bytes, config and history (epoch timings aside) in every repeat."""
    folders = sorted(p.name for p in a.glob("run-*"))
    assert folders == sorted(p.name for p in b.glob("run-*")) and folders
    for name in folders:
        assert (a / name / "model.safetensors").read_bytes() == (b / name / "model.safetensors").read_bytes(), name
        assert json.loads((a / name / "config.json").read_text()) == json.loads((b / name / "config.json").read_text())
        assert _history(a / name) == _history(b / name)


@pytest.fixture(scope="module")
def whole(sample_dataset, tmp_path_factory):
    """One uninterrupted 2-repeat RUN."""
    from synthmed.cli import main

    out = tmp_path_factory.mktemp("whole") / "run"
    assert main(["train", str(sample_dataset), "-o", str(out), "--repeats", "2", *ARGS]) == 0
    return out


@pytest.mark.parametrize("epochs", [4, 6], ids=["after-repeat-1", "mid-repeat-2"])
def test_resume_continues_into_the_uninterrupted_bytes(run, sample_dataset, whole, tmp_path, epochs):
    out = tmp_path / "run"
    _train_interrupted(sample_dataset, out, repeats=2, epochs=epochs)
    kept = partial_path(out)
    assert (kept / "run-01" / "config.json").is_file() and not out.exists()
    if epochs == 6:  # repeat 2 stopped in its 3rd epoch: its epoch checkpoint is kept
        assert (kept / ".run-02.partial" / "fit-state.safetensors").is_file()
    result = run("train", sample_dataset, "-o", out, "--repeats", "2", *ARGS, "--resume")
    assert result.code == 0, result.err
    _same_run(whole, out)
    assert (whole / "runs.csv").read_text().count("\n") == (out / "runs.csv").read_text().count("\n") == 3


def test_resume_refuses_other_options_and_finished_run_is_reported(run, sample_dataset, whole, tmp_path):
    out = tmp_path / "run"
    _train_interrupted(sample_dataset, out, repeats=2, epochs=1)
    refused = run("train", sample_dataset, "-o", out, "--repeats", "2", *ARGS, "--resume", "--seed", "4")
    assert refused.code == 2 and refused.err.count("\n") == 1
    assert "--seed 0, this run has --seed 4" in refused.err
    again = run("train", sample_dataset, "-o", whole, "--repeats", "2", *ARGS, "--resume", "--json")
    assert again.code == 0, again.err
    assert json.loads(again.out)["already_complete"] is True
    other = run("train", sample_dataset, "-o", whole, "--repeats", "2", *ARGS, "--resume", "--lr", "0.01")
    assert other.code == 2 and "was made with --lr 0.001, this run has --lr 0.01" in other.err


def test_shards_evaluated_together_equal_the_whole_run(run, sample_dataset, whole, tmp_path):
    shards = [tmp_path / f"shard{k}" for k in (1, 2)]
    for k, out in enumerate(shards, start=1):
        result = run("train", sample_dataset, "-o", out, "--repeats", "2", *ARGS, "--shard", f"{k}/2")
        assert result.code == 0, result.err
    assert sorted(p.name for p in shards[0].glob("run-*")) == ["run-01"]
    assert sorted(p.name for p in shards[1].glob("run-*")) == ["run-02"]
    for out in shards:
        for folder in out.glob("run-*"):
            assert (folder / "model.safetensors").read_bytes() == (whole / folder.name / "model.safetensors").read_bytes()
    together = run("evaluate", *shards, sample_dataset, "-o", tmp_path / "ev-shards", "--json")
    alone = run("evaluate", whole, sample_dataset, "-o", tmp_path / "ev-whole", "--json")
    assert together.code == 0 and alone.code == 0, together.err + alone.err
    a, b = json.loads(together.out), json.loads(alone.out)
    assert a["repeats"] == b["repeats"] == 2
    assert (a["summary"], a["per_class"]) == (b["summary"], b["per_class"])
    assert a["run"] == [str(p) for p in shards]
    twice = run("evaluate", shards[0], shards[0], sample_dataset, "-o", tmp_path / "ev-twice")
    assert twice.code == 2 and "repeat 1 is in both" in twice.err and not (tmp_path / "ev-twice").exists()
    mixed = tmp_path / "other"
    assert run("train", sample_dataset, "-o", mixed, "--repeats", "2", *ARGS, "--shard", "2/2", "--seed", "1").code == 0
    refused = run("evaluate", shards[0], mixed, sample_dataset, "-o", tmp_path / "ev-mixed")
    assert refused.code == 2 and "--seed" in refused.err and "not shards of one run" in refused.err


def test_a_single_repeat_interrupted_while_moved_into_place_resumes_to_the_same_folder(run, sample_dataset,
                                                                                      tmp_path, monkeypatch):
    """A 1-repeat RUN is one model folder: its finished run-01/ is moved up file by file. An
    interruption between two of those moves still resumes into the uninterrupted folder."""
    import os

    from same_outputs import assert_same_outputs

    assert run("train", sample_dataset, "-o", tmp_path / "whole", *ARGS).code == 0
    real_replace, moved = os.replace, []

    def replace(source, target):
        if Path(source).parent.name == "run-01":
            if len(moved) == 2:
                raise KeyboardInterrupt
            moved.append(source)
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    _train_interrupted(sample_dataset, tmp_path / "out", repeats=1, epochs=99)
    monkeypatch.setattr(os, "replace", real_replace)
    assert len(moved) == 2 and (partial_path(tmp_path / "out") / "run-01").is_dir()
    result = run("train", sample_dataset, "-o", tmp_path / "out", *ARGS, "--resume")
    assert result.code == 0, result.err
    assert_same_outputs(tmp_path / "whole", tmp_path / "out")

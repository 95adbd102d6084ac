"""Same seed, same bytes: every command that fits a model, run twice with one seed, writes
byte-identical outputs; only what records time (provenance's clock and argv, timing columns)
is compared without it (same_outputs.py)."""

from __future__ import annotations

import pytest

from same_outputs import assert_same_outputs

FIT = {
    "train": ["train", "{data}", "-o", "{out}", "--epochs", "2", "--classifier-arg",
              "conv_channels=[4, 8]", "--classifier-arg", "hidden=[16]"],
    "interpolate": ["interpolate", "{data}", "-o", "{out}", "--fit-epochs", "1", "--per-class", "1", "-a", "width=8"],
    "generate": ["generate", "{data}", "-o", "{out}", "--generator", "dcgan", "-g", "width=8", "-g", "batch_size=16",
                 "--fit-epochs", "1", "--fit-only"],
    "compress": ["compress", "{data}", "-o", "{out}", "--codec", "learned-factorized", "--quality", "1",
                 "--fit-epochs", "1", "--splits", "test", "--report-split", "test"],
}


@pytest.mark.parametrize("command", list(FIT))
def test_same_seed_same_bytes(run, sample_dataset, tmp_path, command):
    outs = [tmp_path / name for name in ("a", "b")]
    for out in outs:
        argv = [part.format(data=sample_dataset, out=out) for part in FIT[command]]
        result = run(*argv, "--seed", "5", "--device", "cpu", "-q")
        assert result.code == 0, result.err
    files = assert_same_outputs(*outs)
    assert any(f.suffix == ".safetensors" for f in files)  # a fitted model is among them

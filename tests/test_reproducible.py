"""Same seed, same bytes: every command that fits a model, run twice with one seed, writes
byte-identical outputs; only what records time (provenance's clock and argv, timing columns)
is compared without it."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

FIT = {
    "train": ["train", "{data}", "-o", "{out}", "--epochs", "2", "--classifier-arg",
              "conv_channels=[4, 8]", "--classifier-arg", "hidden=[16]"],
    "interpolate": ["interpolate", "{data}", "-o", "{out}", "--fit-epochs", "1", "--per-class", "1", "-a", "width=8"],
    "generate": ["generate", "{data}", "-o", "{out}", "--generator", "dcgan", "-g", "width=8", "-g", "batch_size=16",
                 "--fit-epochs", "1", "--fit-only"],
    "compress": ["compress", "{data}", "-o", "{out}", "--codec", "learned-factorized", "--quality", "1",
                 "--fit-epochs", "1", "--splits", "test", "--report-split", "test"],
}


def _timed(key: str) -> bool:
    """A column or key that measures time (`seconds`, `fit_s`, `encode_s`, `time`, `..._per_s`)."""
    return "seconds" in key or key.endswith("_s") or key == "time"


def _untimed(value):
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if not _timed(k)}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


def _comparable(path: Path, out: Path):
    data = path.read_bytes()
    if path.name == "provenance.json":
        record = json.loads(data)
        record.pop("argv", None)  # names -o OUT
        return _untimed(record)
    if path.suffix == ".json" and path.name != "options.json":
        return _untimed(json.loads(data))
    if path.suffix == ".csv":
        rows = list(csv.DictReader(io.StringIO(data.decode())))
        return [{k: v for k, v in row.items() if not _timed(k)} for row in rows]
    return data


@pytest.mark.parametrize("command", list(FIT))
def test_same_seed_same_bytes(run, sample_dataset, tmp_path, command):
    outs = [tmp_path / name for name in ("a", "b")]
    for out in outs:
        argv = [part.format(data=sample_dataset, out=out) for part in FIT[command]]
        result = run(*argv, "--seed", "5", "--device", "cpu", "-q")
        assert result.code == 0, result.err
    a, b = outs
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert any(f.suffix == ".safetensors" or f.parent.name == "models" or f.suffix == ".png" for f in files)
    for name in files:
        assert _comparable(a / name, a) == _comparable(b / name, b), name

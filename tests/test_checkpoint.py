"""Model folders: config.json records the sha256 of model.safetensors, which loading verifies;
weights of another architecture are a one-line error naming expected and found; equal tensors
give equal files."""

from __future__ import annotations

import json

import pytest

from synthmed.checkpoint import CONFIG, WEIGHTS, load_checkpoint, save_checkpoint
from synthmed.errors import UsageError


def _classifier(name="cnn-basic", **args):
    from synthmed.registry import get_entry

    entry = get_entry("classifier", name)
    args = {"num_classes": 2, "in_channels": 1, "image_size": [16, 16], **args}
    return entry.factory(**args), {"kind": "classifier", "name": name, "plugin": entry.plugin,
                                   "version": entry.version, "args": args}


def _saved(folder, **args):
    import torch

    torch.manual_seed(0)
    module, config = _classifier(**args)
    save_checkpoint(folder, module, config)
    return folder


def test_config_records_the_weights_digest_and_equal_tensors_give_equal_files(tmp_path):
    from synthmed.data.imageio import sha256_file

    a, b = _saved(tmp_path / "a"), _saved(tmp_path / "b")
    config = json.loads((a / CONFIG).read_text())
    assert config["sha256"] == sha256_file(a / WEIGHTS)
    assert (a / WEIGHTS).read_bytes() == (b / WEIGHTS).read_bytes()
    header = (a / WEIGHTS).read_bytes()[8:8 + int.from_bytes((a / WEIGHTS).read_bytes()[:8], "little")]
    keys = list(json.loads(header))
    assert keys == sorted(keys)  # safetensors writes them in hash order
    assert ((a / WEIGHTS).stat().st_mode & 0o777) == ((a / CONFIG).stat().st_mode & 0o777)
    module, loaded = load_checkpoint(a, kind="classifier")
    assert loaded["name"] == "cnn-basic"


def test_changed_weights_are_refused_by_their_digest(tmp_path):
    folder = _saved(tmp_path / "m")
    data = bytearray((folder / WEIGHTS).read_bytes())
    data[-1] ^= 0xFF  # one flipped bit in the last tensor: still a readable file
    (folder / WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(UsageError, match=r"does not match the sha256 recorded in config.json") as caught:
        load_checkpoint(folder, kind="classifier")
    assert "\n" not in str(caught.value)


def test_weights_of_another_architecture_name_expected_and_found(tmp_path):
    folder = _saved(tmp_path / "m")
    config = json.loads((folder / CONFIG).read_text())
    other = {**config, "name": "cnn-bn"}
    (folder / CONFIG).write_text(json.dumps(other))
    with pytest.raises(UsageError, match=r"holds the weights of name 'cnn-basic', but config.json expects 'cnn-bn'"):
        load_checkpoint(folder, kind="classifier")


def test_weights_that_do_not_fit_the_recorded_arguments(tmp_path):
    folder = _saved(tmp_path / "m")
    config = json.loads((folder / CONFIG).read_text())
    config["args"]["num_classes"] = 3
    (folder / CONFIG).write_text(json.dumps(config))
    with pytest.raises(UsageError, match=r"weights do not fit a cnn-basic built from config.json") as caught:
        load_checkpoint(folder, kind="classifier")
    assert "\n" not in str(caught.value)


def test_truncated_weights_are_one_line(tmp_path):
    folder = _saved(tmp_path / "m")
    config = json.loads((folder / CONFIG).read_text())
    del config["sha256"]  # a folder from before digests: the reader itself must fail cleanly
    (folder / CONFIG).write_text(json.dumps(config))
    (folder / WEIGHTS).write_bytes((folder / WEIGHTS).read_bytes()[:100])
    with pytest.raises(UsageError, match="corrupt or unreadable weights") as caught:
        load_checkpoint(folder, kind="classifier")
    assert "\n" not in str(caught.value)

"""The bad-input corpus: every damaged input against every command that reads it.

Each case builds its damaged files here (no stored fixtures) and asserts the whole rule: exit 2,
exactly one stderr line `synthmed: error: ...` naming what is wrong, no traceback, no new file
anywhere under the case's folder, and the inputs' bytes unchanged."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SMALL = ("--device", "cpu", "-q")


# --------------------------------------------------------------------------- damaged files


def _png(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format="PNG")
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bomb() -> bytes:
    """A valid PNG header declaring 100000 x 100000 pixels (a few bytes on disk)."""
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        _chunk(b"IEND", b"")


def _truncated(path: Path) -> bytes:
    data = path.read_bytes()
    return data[: len(data) // 2]


def _bad_crc(path: Path) -> bytes:
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF  # inside the last IDAT chunk: the header still reads, the data does not
    return bytes(data)


# name -> (new bytes given the old file, words the error line must hold)
IMAGE_DAMAGE = {
    "truncated": (_truncated, "truncated or damaged"),
    "bad-crc": (_bad_crc, "truncated or damaged"),
    "not-an-image": (lambda path: b"this is a text file, not a PNG\n", "not an image file"),
    "empty": (lambda path: b"", "is empty"),
    "wrong-size": (lambda path: _png(np.zeros((20, 24), np.uint8)), "is 20x24 px, dataset.json says 32x32"),
    "wrong-channels": (lambda path: _png(np.zeros((32, 32, 3), np.uint8)), "3 channel(s), dataset.json says 1"),
    "wrong-bit-depth": (lambda path: _png(np.zeros((32, 32), np.uint16)), "16-bit, dataset.json says 8-bit"),
    "bomb": (lambda path: _bomb(), "decompression bomb"),
    "missing": (None, "missing"),
}


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture(scope="module")
def corpus(sample_dataset, tmp_path_factory):
    """One damaged copy of the sample dataset per damage (the first image of every split), and
    a trained RUN for the commands that take one."""
    from synthmed.cli import main
    from synthmed.data import Dataset

    base = tmp_path_factory.mktemp("badinput")
    rows = Dataset.open(sample_dataset).rows
    firsts = [next(r for r in rows if r["split"] == split)["file_name"] for split in ("train", "val", "test")]
    damaged = {}
    for name, (change, _) in IMAGE_DAMAGE.items():
        root = shutil.copytree(sample_dataset, base / name / "data")
        for file_name in firsts:
            path = root / file_name
            if change is None:
                path.unlink()
            else:
                path.write_bytes(change(path))
        damaged[name] = root
    run = base / "run"
    assert main(["train", str(sample_dataset), "-o", str(run), "--epochs", "1", *SMALL,
                 "--classifier-arg", "conv_channels=[4, 8]", "--classifier-arg", "hidden=[16]"]) == 0
    return {"damaged": damaged, "firsts": firsts, "run": run, "clean": sample_dataset}


def _command(name: str, data: Path, out: Path, corpus) -> list[str]:
    run = str(corpus["run"])
    return {
        "info": ["info", str(data)],
        "train": ["train", str(data), "-o", str(out), "--epochs", "1", *SMALL],
        "evaluate": ["evaluate", run, str(data), "-o", str(out), "--device", "cpu"],
        "augment": ["augment", str(data), "-o", str(out), "--policy", "hflip", *SMALL],
        "generate": ["generate", str(data), "-o", str(out), "--generator", "dcgan", "-g", "width=8", "--fit-epochs", "1",
                     "--per-class", "1", *SMALL],
        "interpolate": ["interpolate", str(data), "-o", str(out), "--fit-epochs", "1", "--per-class", "1",
                        "-a", "width=8", *SMALL],
        "compress": ["compress", str(data), "-o", str(out), "--codec", "png", *SMALL],
        "gradcam": ["gradcam", run, str(data), "-o", str(out), "--limit", "2", *SMALL],
        "mix": ["mix", str(data), str(data), "-o", str(out), "--synthetic", "0"],
    }[name]


def _assert_refused(result, case_root: Path, before_tree: set[str], before_hashes: dict[str, str],
                    inputs: Path, words: list[str]) -> str:
    assert result.code == 2, (result.code, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("synthmed: error: "), result.err
    assert "Traceback" not in result.err + result.out
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert _tree(case_root) == before_tree  # no output, no .partial, no scratch file
    assert _hashes(inputs) == before_hashes
    return lines[0]


COMMANDS = ["info", "train", "evaluate", "augment", "generate", "interpolate", "compress", "gradcam", "mix"]


@pytest.mark.parametrize("damage", list(IMAGE_DAMAGE))
@pytest.mark.parametrize("command", COMMANDS)
def test_a_damaged_image_is_one_line_naming_file_and_row(run, corpus, command, damage):
    data = corpus["damaged"][damage]
    case_root = data.parent
    out = case_root / f"out-{command}"
    before_tree, before_hashes = _tree(case_root), _hashes(data)
    result = run(*_command(command, data, out, corpus))
    line = _assert_refused(result, case_root, before_tree, before_hashes, data, [IMAGE_DAMAGE[damage][1]])
    assert any(name in line for name in corpus["firsts"]), line
    assert "metadata.csv line " in line and "(id '" in line, line


# --------------------------------------------------------------------------- damaged metadata


def _edit_csv(root: Path, change) -> None:
    lines = (root / "metadata.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    (root / "metadata.csv").write_text("".join(change(lines)), encoding="utf-8")


def _edit_json(root: Path, change) -> None:
    info = json.loads((root / "dataset.json").read_text())
    change(info)
    (root / "dataset.json").write_text(json.dumps(info))


def _cell(lines, column: str, value: str):
    header = lines[0].rstrip("\n").split(",")
    cells = lines[1].rstrip("\n").split(",")
    cells[header.index(column)] = value
    return [lines[0], ",".join(cells) + "\n", *lines[2:]]


METADATA_DAMAGE = {
    "no-metadata": (lambda root: (root / "metadata.csv").unlink(), "metadata.csv"),
    "missing-column": (lambda root: _edit_csv(root, lambda l: [l[0].replace(",sha256", ",digest", 1), *l[1:]]),
                       "missing required column"),
    "duplicate-id": (lambda root: _edit_csv(root, lambda l: [l[0], l[1], l[1], *l[2:]]), "duplicate"),
    "unknown-label": (lambda root: _edit_csv(root, lambda l: _cell(l, "label", "Nope")), "Nope"),
    "unknown-split": (lambda root: _edit_csv(root, lambda l: _cell(l, "split", "holdout")), "holdout"),
    "unknown-source": (lambda root: _edit_csv(root, lambda l: _cell(l, "source", "painted")), "painted"),
    "path-outside": (lambda root: _edit_csv(root, lambda l: _cell(l, "file_name", "../escape.png")), "escape.png"),
    "absolute-path": (lambda root: _edit_csv(root, lambda l: _cell(l, "file_name", "/etc/passwd")), "/etc/passwd"),
    "not-utf8": (lambda root: (root / "metadata.csv").write_bytes(b"file_name,id\n\xff\xfe\xfa,x\n"), "metadata.csv"),
    "dataset-json-broken": (lambda root: (root / "dataset.json").write_text("{not json"), "dataset.json"),
    "dataset-json-version": (lambda root: _edit_json(root, lambda i: i.update(format_version=99)), "format_version"),
    "dataset-json-no-classes": (lambda root: _edit_json(root, lambda i: i.pop("classes")), "classes"),
    "leak": (None, "leak"),
}
# The leakage rule is the readers' of whole datasets (info) and of train (train).
LEAK_READERS = ("info", "train")


def _leak(root: Path) -> None:
    """A test image whose subject is also in train: the leakage rule."""
    def change(lines):
        header = lines[0].rstrip("\n").split(",")
        split, subject = header.index("split"), header.index("subject")
        rows = [line.rstrip("\n").split(",") for line in lines[1:]]
        train = next(r for r in rows if r[split] == "train")
        next(r for r in rows if r[split] == "test")[subject] = train[subject]
        return [lines[0], *(",".join(r) + "\n" for r in rows)]

    _edit_csv(root, change)


@pytest.fixture(scope="module")
def bad_metadata(sample_dataset, tmp_path_factory):
    base = tmp_path_factory.mktemp("badmeta")
    made = {}
    for name, (change, _) in METADATA_DAMAGE.items():
        root = shutil.copytree(sample_dataset, base / name / "data")
        (change or _leak)(root)
        made[name] = root
    return made


@pytest.mark.parametrize("command,damage", [(c, d) for d in METADATA_DAMAGE for c in ("info", "train", "augment", "compress")
                                            if d != "leak" or c in LEAK_READERS])
def test_damaged_metadata_is_one_line(run, corpus, bad_metadata, command, damage):
    data = bad_metadata[damage]
    case_root = data.parent
    before_tree, before_hashes = _tree(case_root), _hashes(data)
    result = run(*_command(command, data, case_root / f"out-{command}", corpus))
    _assert_refused(result, case_root, before_tree, before_hashes, data, [METADATA_DAMAGE[damage][1]])


# --------------------------------------------------------------------------- a changed file, damaged weights


def test_a_changed_file_is_found_by_info_deep_and_refused_by_mix(run, corpus, tmp_path):
    from synthmed.data import Dataset

    data = shutil.copytree(corpus["clean"], tmp_path / "data")
    first = Dataset.open(data).rows[0]["file_name"]
    (data / first).write_bytes(_png(np.full((32, 32), 7, np.uint8)))  # a valid image, not the recorded one
    before_tree, before_hashes = _tree(tmp_path), _hashes(data)
    assert run("info", data).code == 0  # the shallow check sees a usable image
    for argv, words in ((["info", data, "--deep"], ["does not match its sha256", first]),
                        (["mix", data, data, "-o", tmp_path / "mixed", "--synthetic", "0"], ["sha256", first])):
        _assert_refused(run(*argv), tmp_path, before_tree, before_hashes, data, words)


def _flip_last_byte(folder: Path) -> None:
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (folder / "model.safetensors").write_bytes(bytes(data))


def _other_architecture(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "name": "cnn-bn"}))


def _truncate_weights(folder: Path) -> None:
    (folder / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes()[:64])


RUN_DAMAGE = {
    "weights-changed": (_flip_last_byte, "does not match the sha256 recorded in config.json"),
    "weights-truncated": (_truncate_weights, "does not match the sha256"),
    "other-architecture": (_other_architecture, "holds the weights of name 'cnn-basic', but config.json expects 'cnn-bn'"),
    "config-broken": (lambda folder: (folder / "config.json").write_text("{"), "config.json"),
    "no-weights": (lambda folder: (folder / "model.safetensors").unlink(), "no model.safetensors"),
}


@pytest.mark.parametrize("damage", list(RUN_DAMAGE))
@pytest.mark.parametrize("command", ["evaluate", "gradcam"])
def test_a_damaged_run_is_one_line(run, corpus, tmp_path, command, damage):
    change, words = RUN_DAMAGE[damage]
    damaged = shutil.copytree(corpus["run"], tmp_path / "run")
    change(damaged)
    argv = _command(command, corpus["clean"], tmp_path / "out", {**corpus, "run": damaged})
    before_tree, before_hashes = _tree(tmp_path), _hashes(damaged)
    _assert_refused(run(*argv), tmp_path, before_tree, before_hashes, damaged, [words])

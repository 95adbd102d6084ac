"""What keeps `preprocess` fast without changing its results: the uint8 path and the train
statistics gathered where the pixels are in hand."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthmed.data import Dataset, DatasetWriter
from synthmed.data.imageio import RawImage, decode_png, to_chw
from synthmed.preprocess.steps import (Steps, foreground_box, process, process_float, process_uint8, to_unit,
                                      uint8_foreground_box, uint8_path)


def smooth(height: int, width: int, seed: int = 0) -> np.ndarray:
    """8-bit grey with mild noise and no saturated edges."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    values = 60 + 40 * np.sin(x / 5.0) + 30 * np.cos(y / 7.0) + rng.normal(0, 6, (height, width))
    return np.clip(np.round(values), 0, 255).astype(np.uint8)


def decoded_stats(out: Path) -> dict[str, list[float]]:
    """Mean/std per channel of the written train PNGs, read back from disk."""
    dataset = Dataset.open(out)
    planes = [to_chw(decode_png(dataset.path_of(r))).reshape(dataset.channels, -1) for r in dataset.rows if r["split"] == "train"]
    values = np.concatenate(planes, axis=1).astype(np.float64) / (65535.0 if dataset.bit_depth > 8 else 255.0)
    return {"mean": list(values.mean(axis=1)), "std": list(values.std(axis=1))}


def test_uint8_path_is_taken_only_where_values_need_no_rescaling():
    grey = RawImage(smooth(20, 30))
    assert uint8_path(grey, Steps(size=(16, 16)))
    assert uint8_path(grey, Steps(intensity="dtype", crop=True, opening=1))
    assert uint8_path(grey, Steps(mode="RGB"))
    assert not uint8_path(grey, Steps(bit_depth=16))
    assert not uint8_path(grey, Steps(intensity="minmax"))
    assert not uint8_path(grey, Steps(intensity="percentile"))
    assert not uint8_path(grey, Steps(mode="RGB", crop=True))
    assert not uint8_path(replace(grey, meta={"range": (10.0, 200.0)}), Steps())  # a window
    assert not uint8_path(replace(grey, meta={"invert": True}), Steps())  # MONOCHROME1
    assert not uint8_path(RawImage(smooth(20, 30).astype(np.uint16)), Steps())
    assert not uint8_path(RawImage(np.stack([smooth(20, 30, s) for s in range(3)], axis=2)), Steps())  # colour


def test_uint8_path_resizes_as_pillow_does_within_a_level_of_the_float_path():
    pixels = smooth(45, 60)
    steps = Steps(size=(24, 24))
    out = process(RawImage(pixels), steps)
    # what a Pillow script does: 8-bit Lanczos, pasted centred on black
    resized = Image.fromarray(pixels).resize((24, 18), Image.Resampling.LANCZOS)
    canvas = Image.new("L", (24, 24))
    canvas.paste(resized, (0, 3))
    assert out.dtype == np.uint8 and np.array_equal(out, np.asarray(canvas))
    float_out = process_float(RawImage(pixels), steps)
    difference = np.abs(out.astype(int) - float_out.astype(int))
    assert difference.max() <= 1 and difference.any()  # rounding differs, never by more than a level here


@pytest.mark.parametrize("steps", [Steps(), Steps(crop=True, opening=1, closing=1), Steps(mode="RGB"),
                                   Steps(size=(48, 60), fit="stretch")])
def test_uint8_path_without_a_resize_gives_the_float_paths_pixels(steps):
    pixels = np.zeros((48, 60), np.uint8)
    pixels[8:40, 10:50] = smooth(32, 40, seed=1)  # a bright body on black, so the crop finds a box
    pixels[2, 2] = 255  # a speck for the opening
    out = process_uint8(pixels, steps)
    assert np.array_equal(out, process_float(RawImage(pixels), steps))
    if steps.crop:
        assert out.shape != pixels.shape


def test_train_statistics_come_from_the_pixels_in_hand(tmp_path, monkeypatch):
    """Finishing a dataset decodes no image it was handed pixels or sums for, and gives the
    statistics a decode of the written files gives."""
    import synthmed.data.writing as writing

    images = [smooth(12, 16, seed=s) for s in range(4)]
    out = tmp_path / "out"
    with DatasetWriter(out, classes=["a"], command="test") as writer:
        for number, pixels in enumerate(images):
            writer.add_image(pixels, id=f"i{number}", label="a", split="train" if number < 3 else "test")
        monkeypatch.setattr(writing, "decode_png", lambda path: pytest.fail(f"decoded {path} again"))
    monkeypatch.undo()
    stats = json.loads((out / "dataset.json").read_text())["stats"]
    expected = decoded_stats(out)
    assert stats["mean"] == pytest.approx(expected["mean"], abs=1e-6)
    assert stats["std"] == pytest.approx(expected["std"], abs=1e-6)


@pytest.mark.parametrize("pixels", [smooth(12, 16), np.stack([smooth(9, 7, seed=s) for s in range(3)], axis=2),
                                    (smooth(8, 8).astype(np.uint16) * 257)])
def test_pixel_sums_travel_from_workers_as_plain_floats_bit_for_bit(pixels):
    """Workers send one PixelSums per image: pickled without numpy arrays (smaller and cheaper
    to pickle and load), and loaded back to the same float64 values."""
    import pickle

    from synthmed.data.writing import pixel_sums

    sums = pixel_sums(pixels)
    data = pickle.dumps(sums, protocol=pickle.HIGHEST_PROTOCOL)
    assert b"numpy" not in data
    back = pickle.loads(data)
    assert back.scale == sums.scale and back.count == sums.count
    for name in ("total", "total_sq"):
        assert getattr(back, name).dtype == np.float64
        assert getattr(back, name).tobytes() == getattr(sums, name).tobytes()


def test_train_statistics_of_copied_rows_are_decoded(tmp_path):
    """Rows added without their pixels (copies of another dataset's files) are still counted."""
    first = tmp_path / "first"
    with DatasetWriter(first, classes=["a"], command="test") as writer:
        for number in range(3):
            writer.add_image(smooth(12, 16, seed=number), id=f"i{number}", label="a", split="train")
    source = Dataset.open(first)
    copy = tmp_path / "copy"
    with DatasetWriter(copy, classes=["a"], command="test") as writer:
        for row in source.rows:
            writer.add_file(source.path_of(row), row)
    assert json.loads((copy / "dataset.json").read_text())["stats"] == source.stats


@pytest.mark.parametrize("args, colour, channels", [((), True, 3), (("--bit-depth", "16", "--mode", "L"), False, 1), (("--mode", "RGB"), False, 3)])
def test_preprocess_statistics_equal_those_of_the_written_files(run, tmp_path, args, colour, channels):
    raw = tmp_path / "raw"
    for split, count in (("train", 5), ("test", 2)):
        for label in ("x", "y"):
            for i in range(count):
                path = raw / split / label / f"{label}{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(smooth(20, 28, seed=i + 10 * len(label) + (50 if split == "test" else 0))).save(path)
    if colour:  # in auto mode one colour image makes every image RGB
        Image.fromarray(np.stack([smooth(20, 28, seed=s) for s in (91, 92, 93)], axis=2)).save(raw / "train" / "x" / "colour.png")
    out = tmp_path / "out"
    result = run("preprocess", raw, "-o", out, "--size", "16", "--workers", "2", *args)
    assert result.code == 0, result.err
    stats = json.loads((out / "dataset.json").read_text())["stats"]
    expected = decoded_stats(out)
    assert len(stats["mean"]) == channels
    assert stats["mean"] == pytest.approx(expected["mean"], abs=1e-6)
    assert stats["std"] == pytest.approx(expected["std"], abs=1e-6)


POOL_PARENT = """
import os, sys, threading, types
from synthmed.preprocess.plan import worker_pool
if sys.argv[1] == "thread":
    threading.Thread(target=threading.Event().wait, daemon=True).start()
if sys.argv[1] == "torch":
    sys.modules["torch"] = types.ModuleType("torch")  # what the check looks at, without the import
with worker_pool(2, 8) as pool:
    parents = {pool.submit(os.getppid).result() for _ in range(4)}
print("forked" if parents == {os.getpid()} else "forkserver")
"""


@pytest.mark.parametrize("state, start", [("alone", "forked"), ("thread", "forkserver"), ("torch", "forkserver")])
def test_workers_are_forked_only_from_a_process_with_no_other_thread_and_no_torch(state, start):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", POOL_PARENT, state], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == start


def body(seed: int) -> np.ndarray:
    """A bright blob on a noisy background, 40 x 48."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:40, 0:48]
    blob = np.exp(-(((y - 20) / 12.0) ** 2 + ((x - 22) / 14.0) ** 2))
    return np.clip(np.round(40 + 150 * blob + rng.normal(0, 25, (40, 48))), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("steps", [Steps(crop=True), Steps(crop=True, crop_threshold=0.4, crop_margin=0.1),
                                   Steps(crop=True, intensity="dtype"),
                                   # a threshold equal to one level's value: that level is not above it
                                   Steps(crop=True, crop_threshold=float(np.float32(100 / 255))),
                                   Steps(crop=True, crop_threshold=1.0)])
def test_uint8_crop_box_from_the_levels_is_the_float_images_box(steps):
    """Otsu's threshold of the 256 levels weighted by their counts, and the mask from a table of
    levels, give the box of the float image exactly (not the box of Otsu on the uint8 values)."""
    images = [body(seed) for seed in range(12)] + [np.full((9, 7), 5, np.uint8), np.eye(16, dtype=np.uint8) * 200]
    for pixels in images:
        expected = foreground_box(to_unit(RawImage(pixels), steps), threshold=steps.crop_threshold, margin=steps.crop_margin)
        assert uint8_foreground_box(pixels, steps) == expected
    if steps.crop_threshold is None:  # the images tell the two apart: seed 0's uint8 Otsu box differs
        assert foreground_box(body(0), threshold=None, margin=steps.crop_margin) != uint8_foreground_box(body(0), steps)


def test_level_values_are_made_once_per_steps_and_rise():
    """The table of the 256 levels' values that the uint8 crop compares against: one per
    `Steps`, read-only as calls share it, rising (what makes the mask one comparison)."""
    from synthmed.preprocess.steps import _level_values

    steps = Steps(crop=True)
    values = _level_values(steps)
    assert _level_values(Steps(crop=True)) is values and not values.flags.writeable
    assert values.dtype == np.float32 and values.shape == (256,) and np.all(np.diff(values) > 0)
    assert values.tolist() == to_unit(RawImage(np.arange(256, dtype=np.uint8)[None, :]), steps)[0].tolist()

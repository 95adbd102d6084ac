"""Helpers shared by the generate tests: small datasets and inline plugins."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np

from synthmed.hookspecs import hookimpl


def assert_usage_error(result, out: Path, *words: str) -> None:
    """One `synthmed: error:` line naming `words`, exit 2, and neither `out` nor its partial folder."""
    assert result.code == 2, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("synthmed: error: "), result.err
    for word in words:
        assert word in lines[0], lines[0]
    assert [p for p in out.parent.iterdir() if p.name in (out.name, f".{out.name}.partial")] == []


def class_arrays() -> tuple[np.ndarray, np.ndarray]:
    """12 random 16 px grey images of 3 classes, 4 each: (uint8 (N, 1, 16, 16), int64 labels)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 1, 16, 16), dtype=np.uint8)
    return images, np.array([0, 1, 2] * 4, dtype=np.int64)


def sample16(folder: Path) -> Path:
    """16 px sample data in `folder`/data (real train: 35/27/6/4 images)."""
    from synthmed.data.sample import write_sample_dataset

    return write_sample_dataset(folder / "data", size=16, scale=0.02, seed=0)


def make_dataset(out: Path, layout: dict[str, list[tuple[str, int]]], *, seed: int = 0) -> Path:
    """A dataset of random images: layout = {label: [(split, side), ...]}."""
    from synthmed.data import DatasetWriter

    rng = np.random.default_rng(seed)
    with DatasetWriter(out, classes=list(layout), command="test") as writer:
        for label, items in layout.items():
            for i, (split, side) in enumerate(items):
                pixels = rng.integers(0, 256, (side, side), dtype=np.uint8)
                writer.add_image(pixels, id=f"{label}-{i}", label=label, split=split)
    return out


class JudgePlugin:
    """Registers `tinyjudge`: a linear classifier with the classifier factory signature
    (num_classes, in_channels, image_size)."""

    @hookimpl
    def register_classifiers(self, register):
        register("tinyjudge", tiny_judge, input_size=16)


def tiny_judge(num_classes: int, in_channels: int, image_size: int, favourite: int = 0):
    """Always predicts class `favourite` (zero weights, one positive bias)."""
    import torch
    from torch import nn

    model = nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size * image_size, num_classes))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.zero_()
        model[1].bias[favourite] = 1.0
    return model


def save_judge(folder: Path, dataset, favourite: int = 0) -> Path:
    from synthmed.checkpoint import save_checkpoint

    side = dataset.image_size[0]
    args = {"num_classes": len(dataset.classes), "in_channels": dataset.channels, "image_size": side,
            "favourite": favourite}
    save_checkpoint(folder, tiny_judge(**args), {
        "kind": "classifier", "name": "tinyjudge", "plugin": "test", "version": "0", "args": args,
        "classes": dataset.classes, "image_size": [side, side], "channels": dataset.channels,
        "normalization": dataset.stats,
    })
    return folder


@contextmanager
def inline_generator(name: str, factory, **meta):
    """`factory` registered as generator `name` while the block runs (an inline plugin);
    yields its registry entry."""
    import synthmed.plugins
    from synthmed.registry import get_entry

    class Plugin:
        @hookimpl
        def register_generators(self, register):
            register(name, factory, **meta)

    pm = synthmed.plugins.get_plugin_manager()
    pm.register(Plugin(), name=f"{name}-plugin")
    try:
        yield get_entry("generator", name)
    finally:
        pm.unregister(name=f"{name}-plugin")

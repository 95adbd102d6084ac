"""The stream sets of a `compress` run: which codec at which quality, checked before any work."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from synthmed.data import Dataset, Row
from synthmed.errors import UsageError
from synthmed.parsing import number_list


@dataclass
class StreamSet:
    """One codec at one quality."""

    codec_name: str
    quality: int | None
    codec: Any = field(repr=False, default=None)
    plugin: str = ""
    version: str = ""
    learned: bool = False  # registered learned=True: fitted, and its model saved with the streams

    @property
    def name(self) -> str:
        return self.codec_name if self.quality is None else f"{self.codec_name}-q{self.quality}"


def parse_codec_specs(specs: Sequence[str]) -> list[tuple[str, list[int] | None]]:
    """`NAME` or `NAME=Q1,Q2` -> (name, its own qualities or None)."""
    parsed = []
    for spec in specs:
        name, _, listed = spec.partition("=")
        name = name.strip()
        if not name:
            raise UsageError(f"--codec {spec!r}: expected NAME or NAME=Q1,Q2")
        own = number_list(listed, "--codec", example="jpeg=50,75", kind=int) if listed else None
        parsed.append((name, own))
    return parsed


def plan_sets(specs: Sequence[tuple[str, list[int] | None]], qualities: Sequence[int] | None = None) -> list[StreamSet]:
    """Build each codec once and check its qualities (its own, else `--quality`, else its
    defaults) against its range. A lossless codec has one set and ignores `--quality`
    unless it is the only codec asked for."""
    from synthmed.registry import get_entry

    sets: list[StreamSet] = []
    for name, own in specs:
        entry = get_entry("codec", name)
        codec = entry.factory()
        if codec.quality_range is None:
            if own or (qualities and len(specs) == 1):
                raise UsageError(f"--quality: codec {name} is lossless and has no quality setting; drop the quality")
            chosen: list[int | None] = [None]
        else:
            low, high = codec.quality_range
            chosen = list(own or qualities or codec.default_qualities)
            for q in chosen:
                if not low <= q <= high:
                    raise UsageError(f"--quality {q} is out of range for codec {name} ({low} to {high})")
        for q in dict.fromkeys(chosen):
            sets.append(StreamSet(name, q, codec, entry.plugin, entry.version, entry.info.learned))
    names = [s.name for s in sets]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise UsageError(f"--codec: {', '.join(sorted(duplicates))} asked for twice")
    return sets


def check_fits(dataset: Dataset, rows: Sequence[Row], sets: Sequence[StreamSet]) -> None:
    """Bit depth and image size against each codec, before any work."""
    for stream_set in sets:
        codec = stream_set.codec
        if dataset.bit_depth not in codec.bit_depths:
            able = [s.codec_name for s in sets if 16 in s.codec.bit_depths] or ["png"]
            raise UsageError(
                f"{dataset.root}: {dataset.bit_depth}-bit images, but codec {stream_set.codec_name} stores only "
                f"{'/'.join(map(str, codec.bit_depths))}-bit; use {', '.join(dict.fromkeys(able))} or convert to 8-bit"
            )
        size = dataset.image_size
        if size is not None and max(size) > codec.max_side:
            raise UsageError(
                f"{dataset.root}: images are {size[0]}x{size[1]} px, larger than codec {stream_set.codec_name} "
                f"supports ({codec.max_side} px per side); resize with `synthmed preprocess --size N`"
            )


def find_model(model_dir: Path, stream_set: StreamSet) -> Path:
    """A fitted model for this set inside `--model DIR` (a compress output or its models/ folder)."""
    for candidate in (model_dir / "models" / stream_set.name, model_dir / stream_set.name):
        if (candidate / "config.json").is_file():
            return candidate
    raise UsageError(f"--model {model_dir}: no fitted model for {stream_set.name} (looked in models/{stream_set.name})")

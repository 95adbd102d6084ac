"""Turn `preprocess` command-line values into a PreprocessConfig, validating everything first."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from synthmed.parsing import comma_list, number_list
from synthmed.errors import UsageError
from synthmed.preprocess.labels import LabelRules, compile_regex, read_labels_csv
from synthmed.preprocess.reading import ReadOptions
from synthmed.preprocess.splits import parse_fractions
from synthmed.preprocess.steps import CHANNEL_MODES, FITS, INTENSITY_MODES, Steps


def parse_size(spec: str | None) -> tuple[int, int] | None:
    if spec is None:
        return None
    parts = spec.lower().split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or not all(8 <= v <= 8192 for v in values):
        raise UsageError(f"--size {spec!r}: expected N or HxW with sides between 8 and 8192 pixels")
    return values[0], values[1]


def parse_pair(spec: str, option: str, example: str) -> tuple[float, float]:
    values = number_list(spec, option, example=example) or []
    if len(values) != 2:
        raise UsageError(f"{option} {spec!r}: expected two numbers, e.g. {example}")
    return values[0], values[1]


def parse_slices(spec: str | None) -> tuple[int | None, int | None] | None:
    if spec is None:
        return None
    try:
        start, stop = spec.split(":")
        return (int(start) if start else None, int(stop) if stop else None)
    except ValueError:
        raise UsageError(f"--slices {spec!r}: expected START:STOP, e.g. 20:80 or 10:") from None


def _names(spec: str | Sequence[str] | None, option: str) -> tuple[str, ...] | None:
    names = comma_list(spec, option=option, distinct=True)
    return None if names is None else tuple(names)


def choice(value: str, allowed: tuple[str, ...], option: str) -> str:
    if value not in allowed:
        raise UsageError(f"{option} {value!r}: choose one of {', '.join(allowed)}")
    return value


def build_config(*, inputs: list[Path], size, fit, mode, bit_depth, intensity, percentiles, window, crop,
                 crop_threshold, crop_margin, opening, closing, axis, slices, min_foreground, volume_index,
                 label_regex, default_label, labels_csv, subject_regex, classes, class_names, split_fractions, seed,
                 workers, shard, strict, val_fraction=None, subjects_per_split=False):
    from synthmed.devices import parse_shard
    from synthmed.preprocess.plan import PreprocessConfig

    for path in inputs:
        if not path.exists():
            raise UsageError(f"input {path} does not exist")
    if workers < 1:
        raise UsageError(f"--workers {workers}: must be at least 1")
    mode = {"l": "L", "rgb": "RGB"}.get(mode.lower(), mode)
    choice(mode, CHANNEL_MODES, "--mode")
    choice(fit, FITS, "--fit")
    choice(intensity, INTENSITY_MODES, "--intensity")
    if bit_depth not in (8, 16):
        raise UsageError(f"--bit-depth {bit_depth}: choose 8 or 16")
    if bit_depth == 16 and mode != "L":
        raise UsageError("--bit-depth 16 needs --mode L (PNG stores 16 bits only for grey images)")
    low, high = parse_pair(percentiles, "--percentiles", "0.5,99.5")
    if not 0 <= low < high <= 100:
        raise UsageError(f"--percentiles {percentiles!r}: need 0 <= LOW < HIGH <= 100")
    centre_width = None
    if window is not None:
        centre_width = parse_pair(window, "--window", "40,400")
        if centre_width[1] <= 0:
            raise UsageError(f"--window {window!r}: the width must be positive")
    threshold = None
    if crop_threshold is not None and crop_threshold.lower() != "otsu":
        try:
            threshold = float(crop_threshold)
        except ValueError:
            threshold = -1.0
        if not 0 <= threshold < 1:
            raise UsageError(f"--crop-threshold {crop_threshold!r}: otsu, or a level in [0, 1)")
    if not 0 <= crop_margin <= 1:
        raise UsageError(f"--crop-margin {crop_margin}: choose a fraction in [0, 1]")
    for name, radius in (("--opening", opening), ("--closing", closing)):
        if not 0 <= radius <= 50:
            raise UsageError(f"{name} {radius}: choose a radius from 0 to 50 pixels")
    if axis not in (0, 1, 2):
        raise UsageError(f"--axis {axis}: choose 0, 1 or 2")
    if not 0 <= min_foreground < 1:
        raise UsageError(f"--min-foreground {min_foreground}: choose a fraction in [0, 1)")
    if volume_index is not None and volume_index < 0:
        raise UsageError(f"--volume-index {volume_index}: must be 0 or more")
    if labels_csv is not None and label_regex is not None:
        raise UsageError("--labels-csv and --label-regex both give labels; choose one")
    if default_label is not None and label_regex is None:
        raise UsageError("--default-label only applies with --label-regex")
    rules = LabelRules(
        regex=compile_regex(label_regex, "--label-regex"),
        default_label=default_label,
        subject_regex=compile_regex(subject_regex, "--subject-regex"),
        subjects_per_split=subjects_per_split,
        csv=read_labels_csv(labels_csv, inputs) if labels_csv is not None else None,
        csv_path=labels_csv,
    )
    shard_spec = parse_shard(shard)
    fractions = parse_fractions(split_fractions) if split_fractions is not None else None
    if fractions is not None and shard_spec[1] > 1:
        raise UsageError("--split-fractions with --shard: splits are made over all images; make them in one run (or keep the input's splits)")
    if val_fraction is not None:
        if fractions is not None:
            raise UsageError("--val-fraction carves val out of the input's train split; with --split-fractions, give val there instead")
        if shard_spec[1] > 1:
            raise UsageError("--val-fraction with --shard: val is carved out of all train images; do it in one run")
        if not 0 < val_fraction < 1:
            raise UsageError(f"--val-fraction {val_fraction}: choose a fraction between 0 and 1")
    return PreprocessConfig(
        steps=Steps(
            intensity=intensity, percentiles=(low, high), mode=mode, crop=crop, crop_threshold=threshold,
            crop_margin=crop_margin, opening=opening, closing=closing, size=parse_size(size), fit=fit, bit_depth=bit_depth,
        ),
        read=ReadOptions(
            window=centre_width, percentiles=(low, high), axis=axis, slices=parse_slices(slices),
            min_foreground=min_foreground, volume_index=volume_index,
        ),
        rules=rules,
        classes=_names(classes, "--classes"),
        class_names=_names(class_names, "--class-names"),
        split_fractions=fractions,
        val_fraction=val_fraction,
        seed=seed,
        workers=workers,
        shard=shard_spec,
        strict=strict,
    )

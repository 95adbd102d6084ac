"""`synthmed preprocess`: read, process, split and write the planned files."""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np

from synthmed.data.imageio import decode_png, encode_png, sha256_bytes
from synthmed.data import check_leakage, DatasetWriter, RejectedLog
from synthmed.data.writing import pixel_sums
from synthmed.errors import UsageError
from synthmed.progress import Advance, Progress, no_progress, start_task
from synthmed.preprocess.labels import InputFile
from synthmed.preprocess.plan import (
    Planned,
    PreprocessConfig,
    PreprocessJob,
    ProcessedImage,
    _map_files,
    _missing_labels,
    _missing_splits,
    _natural_key,
    prepare_preprocess,
    row_id,
    staging_folder,
    worker_pool,
)
from synthmed.preprocess.splits import Item, assign_splits, resolve_duplicates
from synthmed.preprocess.steps import Steps
from synthmed.preprocess.subjects import subject_grouping


def preprocess(inputs: list[Path], out: Path, config: PreprocessConfig, *, overwrite: bool = False) -> dict:
    """Run preprocess and return a summary; raises UsageError (nothing written) on bad input."""
    return run_preprocess(prepare_preprocess(inputs, out, config, overwrite=overwrite))


def run_preprocess(job: PreprocessJob, *, progress: Progress = no_progress) -> dict:
    """Read, process, split and write the planned files (reported as the task "reading")."""
    # The workers start before the progress bar's thread does.
    with staging_folder(job.out) as stage, worker_pool(job.config.workers, len(job.files)) as pool:
        return _run(job, stage, pool, progress)


def _run(job: PreprocessJob, stage: Path, pool, progress: Progress) -> dict:
    inputs, out, config, overwrite, files = job.inputs, job.out, job.config, job.overwrite, job.files
    filtered, planned_labels = job.filtered, job.planned_labels
    with start_task(progress, "reading", total=len(files), unit="file") as task:
        rows, rejected, dropped_by_class, notes = _read_files(files, config, stage, pool, task)
    filtered += dropped_by_class
    if not rows:
        if rejected:
            rel, reason = rejected[0]
            raise UsageError(f"nothing usable: all {len(rejected)} input file(s) were rejected (first: {rel}: {reason})")
        raise UsageError(f"nothing usable in {', '.join(map(str, inputs))}: no images left after filtering")

    _pseudonymise_subjects(rows)
    classes = _class_list(rows, planned_labels, config)
    _check_classes(rows, classes, config, rejected)
    _uniform_channels(rows, config.steps)

    items = [Item(r.id, r.label, r.image.sha256, r.subject, r.split) for r in rows]
    split_of = _decide_splits(rows, items, config)
    duplicates = resolve_duplicates(items, split_of)
    kept = [row for row in rows if row.id not in duplicates.dropped]
    grouping = subject_grouping([r.file.rel for r in kept], [r.subject for r in kept], [split_of[r.id] for r in kept],
                                kept=config.split_fractions is None and not config.val_fraction)

    info = {
        "preprocess": {
            "steps": config.steps.describe(),
            "reader": {k: v for k, v in asdict(config.read).items()},
            "labels": config.rules.describe(),
            "subjects": config.rules.describe_subjects(),
            "class_names": list(config.class_names) if config.class_names else None,
            "splits": {"mode": "generated", "fractions": list(config.split_fractions), "seed": config.seed, "grouped_by": "subject and identical pixels"}
            if config.split_fractions
            else {"mode": "input", "val_from_train": config.val_fraction},
            "shard": f"{config.shard[0] + 1}/{config.shard[1]}",
            "duplicates": {"groups": len(duplicates.groups), "dropped_across_splits": len(duplicates.dropped)},
            "rejected": len(rejected),
        },
        "subject_grouping": grouping,
    }
    counts: Counter[tuple[str, str]] = Counter()
    with DatasetWriter(out, classes=classes, command="preprocess", parents=inputs,
                       inputs=[config.rules.csv_path], overwrite=overwrite, info=info) as writer:
        for row in rows:
            if row.id in duplicates.dropped:
                continue
            split = split_of[row.id]
            image = row.image
            writer.add_png_file(image.staged, sha256=image.sha256, shape=image.shape, dtype=image.dtype,
                                sums=image.sums, id=row.id, label=row.label, split=split, subject=row.subject or "")
            counts[(split, row.label)] += 1
        RejectedLog(writer.tmp).add_all(("", rel, reason) for rel, reason in rejected)
        _write_duplicates(writer.tmp / "duplicates.csv", duplicates, split_of)
    return {
        "images": sum(counts.values()),
        "files": len(files),
        "rejected": len(rejected),
        "filtered": filtered,
        "duplicate_groups": len(duplicates.groups),
        "duplicates_dropped": len(duplicates.dropped),
        "classes": classes,
        "counts": {split: {label: counts[(split, label)] for label in classes} for split in ("train", "val", "test")},
        "subject_grouping": grouping,
        "warnings": [grouping["warning"]] * bool(grouping["warning"]) + _decoder_warnings(notes),
    }


def _read_files(
    files: list[InputFile], config: PreprocessConfig, stage: Path, pool, advance: Advance
) -> tuple[list[Planned], list[tuple[str, str]], int, list[tuple[str, str]]]:
    """Read and process every file (in order); returns rows, rejected (file, reason), images filtered
    out, and the decoders' warnings (file, message)."""
    rows: list[Planned] = []
    rejected: list[tuple[str, str]] = []
    filtered = 0
    notes: list[tuple[str, str]] = []  # (file, decoder warning)
    folder = str(stage)  # strings: a Path per file costs more than the name it makes
    tasks = [(f.path, config.read, config.steps, f"{folder}/{number}") for number, f in enumerate(files)]
    for file, result in zip(files, _map_files(tasks, pool, config.workers)):
        advance(1)
        notes.extend((file.rel, note) for note in result.notes)
        if result.usage_error:
            raise UsageError(result.usage_error)
        if result.error:
            if config.strict:
                raise UsageError(f"{file.path}: {result.error} (--strict stops at the first unusable file)")
            rejected.append((file.rel, result.error))
            continue
        for image in result.images:
            # Labels stored in the file (npz) win over its folder's name; a CSV or regex wins over both.
            explicit = config.rules.csv is not None or config.rules.regex is not None
            if image.label_index is not None and not (explicit and file.label is not None):
                label = _label_from_index(image, file, config)
            else:
                label = file.label
            if label is None:
                _missing_labels([file], len(files), config.rules)
            if config.classes is not None and label not in config.classes:
                filtered += 1
                continue
            subject = file.subject or image.subject or (file.rel if image.subject_is_file else None)
            row = row_id(file.rel, image.key, opaque=image.pseudonymise)
            rows.append(Planned(file, image, row, label, subject, image.split or file.split))
    return rows, rejected, filtered, notes


def _decoder_warnings(notes: list[tuple[str, str]]) -> list[str]:
    """One line for all the files a decoder warned about, naming the first."""
    if not notes:
        return []
    files = len(dict.fromkeys(rel for rel, _ in notes))
    rel, message = notes[0]
    return [f"{files} file(s) gave decoder warnings (first: {rel}: {message})"]


def _decide_splits(rows: list[Planned], items: list[Item], config: PreprocessConfig) -> dict[str, str]:
    """id -> split: generated (--split-fractions), or the input's (optionally with val carved out of train)."""
    if config.split_fractions is not None:
        return assign_splits(items, config.split_fractions, config.seed)
    unsplit = [r.file.rel for r in rows if r.split is None]
    if unsplit:
        _missing_splits(unsplit)
    split_of = {r.id: r.split for r in rows}
    if config.val_fraction:
        split_of.update(_carve_val(items, split_of, config.val_fraction, config.seed))
    try:
        check_leakage([{"id": r.id, "split": split_of[r.id], "subject": r.subject or "", "origin": ""} for r in rows])
    except UsageError as exc:
        raise UsageError(
            f"the input's splits share a subject: {exc}; pass --split-fractions to make subject-grouped splits, "
            "or --subjects-per-split if subject ids restart in each split folder"
        ) from None
    return split_of


def _carve_val(items: list[Item], split_of: dict[str, str], fraction: float, seed: int) -> dict[str, str]:
    """Move a stratified, subject-grouped `fraction` of the input's train split to val."""
    if any(split == "val" for split in split_of.values()):
        raise UsageError("--val-fraction: the input already has a val split; drop the option to keep it")
    train = [item for item in items if split_of[item.id] == "train"]
    moved = assign_splits(train, (1.0 - fraction, fraction, 0.0), seed)
    return {item_id: split for item_id, split in moved.items() if split == "val"}


def _label_from_index(image: ProcessedImage, file: InputFile, config: PreprocessConfig) -> str | None:
    if image.label_index is None:
        return None
    if config.class_names is None:
        return str(image.label_index)
    if not 0 <= image.label_index < len(config.class_names):
        raise UsageError(
            f"{file.path}: label index {image.label_index} has no name in --class-names ({len(config.class_names)} given)"
        )
    return config.class_names[image.label_index]


def _pseudonymise_subjects(rows: list[Planned]) -> None:
    """Subjects read from DICOM tags become subject-0001, ... in input order: grouping without identifiers."""
    numbers: dict[str, str] = {}
    for row in rows:
        if row.image.pseudonymise and row.subject and row.subject == row.image.subject:
            row.subject = numbers.setdefault(row.subject, f"subject-{len(numbers) + 1:04d}")


def _class_list(rows: list[Planned], planned_labels: set[str], config: PreprocessConfig) -> list[str]:
    if config.classes is not None:
        return list(config.classes)
    if config.class_names is not None:
        extra = sorted({r.label for r in rows} - set(config.class_names), key=_natural_key)
        return list(config.class_names) + extra
    return sorted(planned_labels | {r.label for r in rows}, key=_natural_key)


def _check_classes(rows: list[Planned], classes: list[str], config: PreprocessConfig, rejected: list) -> None:
    present = Counter(r.label for r in rows)
    empty = [c for c in classes if not present[c]]
    if empty and config.shard[1] == 1:
        why = f"; {len(rejected)} file(s) were rejected (see the reasons with --strict)" if rejected else ""
        raise UsageError(f"class {empty[0]!r} has no images left after filtering{why}")


def _uniform_channels(rows: list[Planned], steps: Steps) -> None:
    """In auto mode, one colour image makes every image RGB (a dataset has one channel count)."""
    if steps.mode != "auto" or all(r.image.shape[0] == 1 for r in rows):
        return
    for row in rows:
        if row.image.shape[0] == 1:
            pixels = np.repeat(decode_png(Path(row.image.staged))[:, :, None], 3, axis=2)
            data = encode_png(pixels)
            Path(row.image.staged).write_bytes(data)
            row.image.sha256 = sha256_bytes(data)
            row.image.shape = (3, *pixels.shape[:2])
            row.image.sums = pixel_sums(pixels)


def _write_duplicates(path: Path, duplicates, split_of: dict[str, str]) -> None:
    if not duplicates.groups:
        return
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["group", "id", "split", "kept"])
        for number, ids in enumerate(duplicates.groups, start=1):
            for row_id_ in ids:
                kept = "no (copy kept in " + duplicates.dropped[row_id_] + ")" if row_id_ in duplicates.dropped else "yes"
                writer.writerow([number, row_id_, split_of[row_id_], kept])

"""`preprocess`: raw medical image files -> a dataset folder (DESIGN.md section 3).

    files --plan (labels, subjects, input splits from paths)--> read + process (process pool)
          --> labels from the files themselves (npz) --> splits (kept or generated, grouped)
          --> duplicates (reported; cross-split copies dropped) --> DatasetWriter

Rows come out in input-file order whatever `workers` is. Files that cannot be read go to
`rejected.csv`; option problems (a 4-D NIfTI without --volume-index, missing labels) stop
the run before anything is written.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from synthmed.dataset import DatasetWriter, check_leakage, refuse_output_over_inputs
from synthmed.devices import take_shard
from synthmed.errors import UsageError
from synthmed.imageio import channels_of, decode_png, encode_png
from synthmed.preprocess.labels import InputFile, LabelRules, discover, plan_file
from synthmed.preprocess.reading import ReadOptions, UnreadableFile, read_file
from synthmed.preprocess.splits import Item, assign_splits, resolve_duplicates
from synthmed.preprocess.steps import Steps, pixel_digest, process

# Files with these endings are images for the built-in readers; their labels are checked before reading.
KNOWN_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm", ".dicom", ".nii", ".nii.gz")


@dataclass(frozen=True)
class PreprocessConfig:
    steps: Steps = Steps()
    read: ReadOptions = ReadOptions()
    rules: LabelRules = field(default_factory=LabelRules)
    classes: tuple[str, ...] | None = None  # --classes: keep only these, in this order
    class_names: tuple[str, ...] | None = None  # names of label indices stored in .npz files
    split: tuple[float, float, float] | None = None  # generate splits; None keeps the input's
    val_fraction: float | None = None  # with kept splits: carve val out of the input's train split
    seed: int = 0
    workers: int = 1
    shard: tuple[int, int] = (0, 1)
    strict: bool = False


@dataclass
class ProcessedImage:
    key: str
    png: bytes  # encoded in the worker, so the main process only writes files
    shape: tuple[int, int, int]  # (C, H, W)
    dtype: str
    digest: str
    subject: str | None = None
    split: str | None = None
    label_index: int | None = None
    subject_is_file: bool = False
    pseudonymise: bool = False


@dataclass
class FileResult:
    images: list[ProcessedImage] = field(default_factory=list)
    error: str | None = None  # the file is rejected
    usage_error: str | None = None  # the run stops


@dataclass
class Planned:
    """One output row before writing."""

    file: InputFile
    image: ProcessedImage
    id: str
    label: str
    subject: str | None
    split: str | None


def process_file(task: tuple[Path, ReadOptions, Steps]) -> FileResult:
    """Read one file and process its images (runs in a worker process)."""
    path, read_options, steps = task
    try:
        raws = read_file(path, read_options)
        images = []
        for raw in raws:
            pixels = process(raw, steps)
            images.append(
                ProcessedImage(
                    key=raw.key,
                    png=encode_png(pixels),
                    shape=(channels_of(pixels), *pixels.shape[:2]),
                    dtype=str(pixels.dtype),
                    digest=pixel_digest(pixels),
                    subject=raw.subject,
                    split=raw.meta.get("split"),
                    label_index=raw.meta.get("label_index"),
                    subject_is_file=bool(raw.meta.get("subject_is_file")),
                    pseudonymise=bool(raw.meta.get("pseudonymise_subject")),
                )
            )
        return FileResult(images)
    except UsageError as exc:
        return FileResult(usage_error=str(exc))
    except UnreadableFile as exc:
        return FileResult(error=str(exc))
    except Exception as exc:  # noqa: BLE001 - a processing failure rejects this file only
        message = str(exc).splitlines()[0] if str(exc) else ""
        return FileResult(error=f"cannot process ({type(exc).__name__}: {message})")


def _map_files(tasks: list, workers: int) -> Iterator[FileResult]:
    """Results in task order; a process pool when workers > 1."""
    if workers <= 1 or len(tasks) <= 1:
        yield from map(process_file, tasks)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # forkserver: workers do not inherit the progress bar's thread or locks (plain fork could deadlock).
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["synthmed.engine.preprocessing", "synthmed.default_plugins.readers"])
    chunk = max(1, min(16, len(tasks) // (workers * 8)))
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        yield from pool.map(process_file, tasks, chunksize=chunk)


def row_id(rel: str, key: str, *, opaque: bool = False) -> str:
    """Readable, stable and unique: the sanitised relative path (and frame/slice key) plus a short hash.

    `opaque` ids (DICOM files, whose names are often UIDs or patient names) keep only a hash."""
    if opaque:
        digest = hashlib.sha256(f"{rel}\x1f{key}".encode()).hexdigest()[:12]
        return f"dicom-{digest}-{key}" if key else f"dicom-{digest}"
    stem = re.sub(r"(\.nii\.gz|\.[A-Za-z0-9]{1,5})$", "", rel)
    text = f"{stem}-{key}" if key else stem
    safe = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-_")[-80:].lstrip("-_") or "image"
    short = hashlib.sha256(f"{rel}\x1f{key}".encode()).hexdigest()[:6]
    return f"{safe}-{short}"


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def plan_files(inputs: list[Path], config: PreprocessConfig, out: Path) -> tuple[list[InputFile], int]:
    """Every input file with what its path says; (files to read, files filtered out by --classes)."""
    skip = {config.rules.csv_path.resolve()} if config.rules.csv_path else set()
    found = discover(inputs, skip=skip, skip_under=out)
    if not found:
        raise UsageError(f"no files found in {', '.join(map(str, inputs))}")
    files = [plan_file(path, rel, config.rules) for path, rel in found]
    unlabeled = [f for f in files if f.label is None and f.rel.lower().endswith(KNOWN_IMAGE_SUFFIXES)]
    if unlabeled:
        _missing_labels(unlabeled, len(files), config.rules)
    if config.split is None:
        no_split = [f for f in files if f.split is None and f.rel.lower().endswith(KNOWN_IMAGE_SUFFIXES)]
        if no_split:
            _missing_splits(no_split)
    filtered = 0
    if config.classes is not None:
        kept = [f for f in files if f.label is None or f.label in config.classes]
        filtered = len(files) - len(kept)
        files = kept
    return files, filtered


def _missing_labels(files: list[InputFile], total: int, rules: LabelRules) -> None:
    if rules.csv is not None:
        how = f"add them to {rules.csv_path}"
    elif rules.regex is not None:
        how = "pass --default-label for names the --label-regex does not match"
    else:
        how = "put images in class folders, or pass --label-regex or --labels-csv"
    raise UsageError(f"labels missing for {len(files)} of {total} files (first: {files[0].rel}); {how}")


def _missing_splits(files: list) -> None:
    first = files[0].rel if isinstance(files[0], InputFile) else files[0]
    raise UsageError(
        f"{len(files)} file(s) are not in a train/val/test folder (first: {first}); pass --split 0.8,0.1,0.1 to make splits"
    )


@dataclass
class PreprocessJob:
    """Everything checked and planned before any image is read."""

    inputs: list[Path]
    out: Path
    config: PreprocessConfig
    overwrite: bool
    files: list[InputFile]  # this shard's files, in input order
    filtered: int  # files left out by --classes
    planned_labels: set[str]


def prepare_preprocess(inputs: list[Path], out: Path, config: PreprocessConfig, *, overwrite: bool = False) -> PreprocessJob:
    """Validate the output and plan the files (labels, subjects, splits from paths); raises UsageError."""
    refuse_output_over_inputs(out, [*inputs, config.rules.csv_path])
    if out.exists() and not overwrite:  # DatasetWriter checks again; this saves reading everything first
        raise UsageError(f"output {out} exists; pass --overwrite to replace it")
    files, filtered = plan_files(inputs, config, out)
    # Classes named by image files' paths; a class whose files were all rejected is then an error.
    planned_labels = {f.label for f in files if f.label is not None and f.rel.lower().endswith(KNOWN_IMAGE_SUFFIXES)}
    return PreprocessJob(list(inputs), out, config, overwrite, take_shard(files, config.shard), filtered, planned_labels)


def preprocess(inputs: list[Path], out: Path, config: PreprocessConfig, *, overwrite: bool = False) -> dict:
    """Run preprocess and return a summary; raises UsageError (nothing written) on bad input."""
    return run_preprocess(prepare_preprocess(inputs, out, config, overwrite=overwrite))


def run_preprocess(job: PreprocessJob, *, on_advance: Callable[[int], None] | None = None) -> dict:
    """Read, process, split and write the planned files; `on_advance(1)` after each file."""
    inputs, out, config, overwrite, files = job.inputs, job.out, job.config, job.overwrite, job.files
    filtered, planned_labels = job.filtered, job.planned_labels
    rows, rejected, dropped_by_class = _read_files(files, config, on_advance)
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

    items = [Item(r.id, r.label, r.image.digest, r.subject, r.split) for r in rows]
    split_of = _decide_splits(rows, items, config)
    duplicates = resolve_duplicates(items, split_of)

    info = {
        "preprocess": {
            "steps": config.steps.describe(),
            "reader": {k: v for k, v in asdict(config.read).items()},
            "labels": config.rules.describe(),
            "subjects": config.rules.describe_subjects(),
            "class_names": list(config.class_names) if config.class_names else None,
            "splits": {"mode": "generated", "fractions": list(config.split), "seed": config.seed, "grouped_by": "subject and identical pixels"}
            if config.split
            else {"mode": "input", "val_from_train": config.val_fraction},
            "shard": f"{config.shard[0] + 1}/{config.shard[1]}",
            "duplicates": {"groups": len(duplicates.groups), "dropped_across_splits": len(duplicates.dropped)},
            "rejected": len(rejected),
        }
    }
    counts: Counter[tuple[str, str]] = Counter()
    with DatasetWriter(out, classes=classes, command="preprocess", parents=inputs,
                       inputs=[config.rules.csv_path], overwrite=overwrite, info=info) as writer:
        for row in rows:
            if row.id in duplicates.dropped:
                continue
            split = split_of[row.id]
            image = row.image
            writer.add_png(
                image.png, shape=image.shape, dtype=image.dtype, id=row.id, label=row.label, split=split, subject=row.subject or ""
            )
            counts[(split, row.label)] += 1
        _write_rejected(writer.tmp / "rejected.csv", rejected)
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
    }


def _read_files(
    files: list[InputFile], config: PreprocessConfig, on_advance: Callable[[int], None] | None
) -> tuple[list[Planned], list[tuple[str, str]], int]:
    """Read and process every file (in order); returns rows, rejected (file, reason), images filtered out."""
    rows: list[Planned] = []
    rejected: list[tuple[str, str]] = []
    filtered = 0
    tasks = [(f.path, config.read, config.steps) for f in files]
    for file, result in zip(files, _map_files(tasks, config.workers)):
        if on_advance:
            on_advance(1)
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
    return rows, rejected, filtered


def _decide_splits(rows: list[Planned], items: list[Item], config: PreprocessConfig) -> dict[str, str]:
    """id -> split: generated (--split), or the input's (optionally with val carved out of train)."""
    if config.split is not None:
        return assign_splits(items, config.split, config.seed)
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
            f"the input's splits share a subject: {exc}; pass --split to make subject-grouped splits, "
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
            pixels = np.repeat(decode_png(io.BytesIO(row.image.png))[:, :, None], 3, axis=2)
            row.image.png = encode_png(pixels)
            row.image.shape = (3, *pixels.shape[:2])
            row.image.digest = pixel_digest(pixels)


def _write_rejected(path: Path, rejected: list[tuple[str, str]]) -> None:
    if not rejected:
        return
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["file", "reason"])
        writer.writerows(rejected)


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

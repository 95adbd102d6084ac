"""Planning a preprocess run: its configuration, the input files and their labels, subjects and splits."""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from synthmed.data.imageio import channels_of, encode_png, sha256_bytes
from synthmed.data import refuse_output_over_inputs
from synthmed.data.writing import PixelSums, pixel_sums
from synthmed.devices import take_shard
from synthmed.errors import UsageError
from synthmed.preprocess.labels import InputFile, LabelRules, discover, plan_file
from synthmed.preprocess.reading import ReadOptions, UnreadableFile, read_file
from synthmed.preprocess.steps import Steps, process

# Files with these endings are images for the built-in readers; their labels are checked before reading.
KNOWN_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm", ".dicom", ".nii", ".nii.gz")


@dataclass(frozen=True)
class PreprocessConfig:
    steps: Steps = Steps()
    read: ReadOptions = ReadOptions()
    rules: LabelRules = field(default_factory=LabelRules)
    classes: tuple[str, ...] | None = None  # --classes: keep only these, in this order
    class_names: tuple[str, ...] | None = None  # names of label indices stored in .npz files
    split_fractions: tuple[float, float, float] | None = None  # generate splits; None keeps the input's
    val_fraction: float | None = None  # with kept splits: carve val out of the input's train split
    seed: int = 0
    workers: int = 1
    shard: tuple[int, int] = (0, 1)
    strict: bool = False


@dataclass
class ProcessedImage:
    key: str
    staged: str  # the PNG, written by the worker into the staging folder; the main process only moves it
    sha256: str  # of the staged file's bytes; PNG is lossless and its encoding deterministic, so this
    # is also the key of pixel-identical images (duplicates)
    shape: tuple[int, int, int]  # (C, H, W)
    dtype: str
    sums: PixelSums  # for the train statistics, so the main process never decodes the PNG again
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
    notes: list[str] = field(default_factory=list)  # decoder warnings (e.g. pydicom's on non-standard tags)


@dataclass
class Planned:
    """One output row before writing."""

    file: InputFile
    image: ProcessedImage
    id: str
    label: str
    subject: str | None
    split: str | None


def process_file(task: tuple[Path, ReadOptions, Steps, str]) -> FileResult:
    """Read one file, process its images and write them as PNG files named `stage`-N.png (runs in a
    worker process, so encoding, writing and hashing run in parallel)."""
    path, read_options, steps, stage = task
    # Decoders warn through Python's warnings (pydicom on values outside the standard, read
    # anyway): collected here and summarised in one line, not printed as two raw lines per file.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _process_file(path, read_options, steps, stage)
    result.notes = list(dict.fromkeys(str(w.message).splitlines()[0] for w in caught
                                      if issubclass(w.category, UserWarning) and str(w.message)))
    return result


def _process_file(path: Path, read_options: ReadOptions, steps: Steps, stage: str) -> FileResult:
    try:
        raws = read_file(path, read_options)
        images = []
        for number, raw in enumerate(raws):
            pixels = process(raw, steps)
            data = encode_png(pixels)
            staged = f"{stage}-{number}.png"
            with open(staged, "wb") as handle:
                handle.write(data)
            images.append(
                ProcessedImage(
                    key=raw.key,
                    staged=staged,
                    sha256=sha256_bytes(data),
                    shape=(channels_of(pixels), *pixels.shape[:2]),
                    dtype=str(pixels.dtype),
                    sums=pixel_sums(pixels),
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


def _map_files(tasks: list, pool, workers: int) -> Iterator[FileResult]:
    """Results in task order; in `pool` (from `worker_pool`, `workers` processes) when there is one."""
    if pool is None:
        yield from map(process_file, tasks)
        return
    chunk = max(1, min(16, len(tasks) // (workers * 8)))
    yield from pool.map(process_file, tasks, chunksize=chunk)


@contextmanager
def worker_pool(workers: int, tasks: int) -> Iterator[object]:
    """A process pool of `workers` processes with every worker already started, or None when one
    process does the work. Start it before any thread (e.g. the progress bar's) starts."""
    if workers <= 1 or tasks <= 1:
        yield None
        return
    import multiprocessing
    import sys
    import threading
    from concurrent.futures import ProcessPoolExecutor

    from synthmed.plugins import get_plugin_manager

    get_plugin_manager()  # loaded once here, so forked workers inherit the plugins
    if threading.active_count() == 1 and "torch" not in sys.modules:
        # fork: workers start in milliseconds with everything imported. Safe only in a process
        # with no other thread (no lock can be held mid-fork) and no torch (its thread pools).
        context = multiprocessing.get_context("fork")
    else:
        # forkserver: workers inherit no thread or lock; each imports and loads plugins (~0.2 s)
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["synthmed.preprocess.plan", "synthmed.preprocess.formats"])
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_keep_freed_memory) as pool:
        # With fork, the first submit starts every worker at once, before the pool's own thread.
        pool.submit(int).result()
        try:
            yield pool
        except BaseException:
            pool.shutdown(cancel_futures=True)  # a run that stops (--strict, Ctrl-C) reads no further
            raise


def _keep_freed_memory() -> None:
    """In each worker: glibc keeps freed memory for the next image instead of handing it back to
    the system (and page-faulting it in again, at every image, tens of faults each); where there
    is no glibc `mallopt`, nothing changes."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):  # no C library by that name, or no mallopt in it
        return
    mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD: free memory kept before trimming the heap
    mallopt(-3, 16 << 20)  # M_MMAP_THRESHOLD: blocks under 16 MiB come from the heap, not mmap


@contextmanager
def staging_folder(out: Path) -> Iterator[Path]:
    """A hidden folder beside `out` (so moving files into the output is a rename) where workers
    write the PNGs; removed however the run ends."""
    if not out.parent.is_dir():
        raise UsageError(f"output {out}: parent folder {out.parent} does not exist")
    try:
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    except OSError as exc:
        raise UsageError(f"output {out}: cannot write in {out.parent.resolve()} ({exc.strerror})") from None
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


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
    if config.split_fractions is None:
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
        f"{len(files)} file(s) are not in a train/val/test folder (first: {first}); pass --split-fractions 0.8,0.1,0.1 to make splits"
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

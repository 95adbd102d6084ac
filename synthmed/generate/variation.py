"""Image-conditional generation: plan which variations to make, then make them resumably.

`synthmed generate` calls these for generators registered with `conditioning="image"`
(contract 5 in BRIEF.md); they are plain functions so scripts and benchmarks can drive
them without the CLI.

    plan = plan_variations(dataset, per_image=2, seed=0, generator=entry.name)
    with DatasetWriter(out, classes=dataset.classes, command="generate", resumable=True) as writer:
        summary = run_variations(dataset, plan, writer, entry, generator, device="cpu")

The output's own journal (`DatasetWriter`) is the resume record: a planned id whose row is
written is never handed to the generator again. Tasks the generator rejects go to
`rejected.csv` in the output; they made no image, and `--resume` tries them again.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from synthmed.data.imageio import from_chw
from synthmed.data import JOURNAL, check_leakage, Dataset, DatasetWriter, partial_path, Row
from synthmed.devices import take_shard
from synthmed.errors import SynthmedError, UsageError
from synthmed.protocols import VariationTask
from synthmed.seeding import derive_seed

ALLOW_UPLOAD_ENV = "SYNTHMED_ALLOW_UPLOAD"
REJECTED_FILE = "rejected.csv"
REJECTED_COLUMNS = ("id", "source", "reason")
# Sources are decoded and handed to the generator in chunks of this many tasks, so memory
# stays bounded on large datasets while a concurrent generator still has plenty to overlap.
CHUNK_TASKS = 256


@dataclass(frozen=True)
class PlannedVariation:
    """The `index`-th variation of real image `source`, made with `seed`, stored as row `id`."""

    source: Row
    index: int
    seed: int
    id: str


def variation_id(source_id: str, generator_name: str, index: int) -> str:
    """Row id of a variation (contract 4): `<source id>--<generator>-<index:03d>`."""
    return f"{source_id}--{generator_name}-{index:03d}"




def plan_variations(
    dataset: Dataset,
    *,
    counts: dict[str, int] | None = None,
    per_image: int | None = None,
    splits: Sequence[str] = ("train",),
    classes: Sequence[str] | None = None,
    seed: int,
    shard: tuple[int, int] = (0, 1),
    generator: str = "variation",
) -> list[PlannedVariation]:
    """Which variations to make, in a stable order that does not depend on `shard`.

    Sources are the real images of `splits` (train only unless asked) and of `classes`.
    Either `per_image` K variations of every source, or `counts[label]` images per class
    spread evenly over that class's sources (which sources get one more is drawn from
    `seed`). The plan is round-robin over sources (every source's variation 0 first), so
    `--max-requests` and `--shard` cut it evenly across classes. `generator` is the
    generator's registry name, used in the row ids; pass `entry.name`.
    """
    if isinstance(splits, str):  # "train,val" as typed after --splits
        splits = tuple(part.strip() for part in splits.split(",") if part.strip())
    if (counts is None) == (per_image is None):
        raise UsageError("give either --per-image K or per-class counts (--per-class/--ratio/--balance), not both or neither")
    if per_image is not None and per_image < 1:
        raise UsageError(f"--per-image {per_image}: must be at least 1")
    unknown_splits = [s for s in splits if s not in ("train", "val", "test")]
    if not splits or unknown_splits:
        raise UsageError(f"--splits {','.join(splits)}: each must be one of train, val, test")
    wanted_classes = list(classes) if classes is not None else dataset.classes
    unknown = [c for c in [*wanted_classes, *(counts or {})] if c not in dataset.classes]
    if unknown:
        raise UsageError(f"unknown class {unknown[0]!r}; the dataset's classes are {', '.join(dataset.classes)}")

    sources = dataset.select(split=list(splits), source="real", labels=wanted_classes)
    per_source: dict[str, int] = {}
    if per_image is not None:
        per_source = {row["id"]: per_image for row in sources}
    else:
        assert counts is not None
        for label, wanted in counts.items():
            if wanted < 0:
                raise UsageError(f"count for class {label!r} is {wanted}; counts cannot be negative")
            if wanted == 0 or label not in wanted_classes:
                continue
            of_class = [row for row in sources if row["label"] == label]
            if not of_class:
                raise UsageError(
                    f"class {label!r} has no real images in split(s) {', '.join(splits)} to make variations of"
                )
            # Seeded order: which sources receive the remainder does not favour file order.
            of_class.sort(key=lambda row: derive_seed(seed, "spread", row["id"]))
            base, extra = divmod(wanted, len(of_class))
            for rank, row in enumerate(of_class):
                share = base + (1 if rank < extra else 0)
                if share:
                    per_source[row["id"]] = share
    if not sources:
        raise UsageError(f"no real images in split(s) {', '.join(splits)} to make variations of")

    plan = []
    for index in range(max(per_source.values(), default=0)):
        for row in sources:
            if index < per_source.get(row["id"], 0):
                plan.append(
                    PlannedVariation(
                        source=row,
                        index=index,
                        seed=derive_seed(seed, row["id"], index),
                        id=variation_id(row["id"], generator, index),
                    )
                )
    return take_shard(plan, shard)


def pending_variations(plan: Sequence[PlannedVariation], out: str | os.PathLike[str], generator: str
                       ) -> list[PlannedVariation]:
    """The planned variations an interrupted output does not hold yet (for `--dry-run --resume`).

    Reads the journal of OUT's partial folder without opening a writer, so nothing is written;
    with no partial folder everything is pending."""
    import json

    journal = partial_path(Path(out)) / JOURNAL
    done: set[str] = set()
    if journal.is_file():
        with open(journal, encoding="utf-8") as handle:
            for line in handle:
                try:
                    done.add(json.loads(line)["id"])
                except (ValueError, KeyError, TypeError):
                    break  # a line cut short by a crash
    return [item for item in plan if variation_id(item.source["id"], generator, item.index) not in done]




def upload_allowed(allow_upload: bool = False) -> bool:
    """`--allow-upload`, or SYNTHMED_ALLOW_UPLOAD=1 in the environment."""
    return allow_upload or os.environ.get(ALLOW_UPLOAD_ENV, "").strip().lower() in ("1", "true", "yes")


def check_upload_permission(generator: Any, allow_upload: bool = False) -> None:
    """Refuse (UsageError naming the host) a generator that uploads images without permission.

    Callers may run this before opening their output, so a refusal leaves nothing behind."""
    host = getattr(generator, "upload_host", None)
    if host and not upload_allowed(allow_upload):
        raise UsageError(
            f"generator {getattr(generator, 'name', '?')!r} would upload the source images to {host}; "
            f"pass --allow-upload (or set {ALLOW_UPLOAD_ENV}=1) if your data may leave this machine"
        )


def _refuse(message: str, writer: DatasetWriter) -> SynthmedError:
    """A bad-input error (exit 2) that keeps a resumed output's finished images.

    DatasetWriter discards its folder on a UsageError; once it holds images (paid for,
    perhaps) a refusal must not delete them, so it is raised as exit-2 SynthmedError."""
    if not writer.rows:
        return UsageError(message)
    error = SynthmedError(message)
    error.exit_code = 2
    return error


class RejectedLog:
    """`rejected.csv` (id, source, reason) in the output being written, rewritten on each add
    (small) so that a crash never leaves it half-written."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / REJECTED_FILE
        self.entries: dict[str, dict[str, str]] = {}
        if self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as handle:
                for entry in csv.DictReader(handle):
                    self.entries[entry["id"]] = {c: entry.get(c, "") for c in REJECTED_COLUMNS}

    def forget(self, ids: Iterable[str]) -> None:
        """Drop earlier rejections of tasks that are tried again or done now."""
        before = len(self.entries)
        for row_id in ids:
            self.entries.pop(row_id, None)
        if len(self.entries) != before:
            self._save()

    def add(self, row_id: str, source_id: str, reason: str) -> None:
        self.entries[row_id] = {"id": row_id, "source": source_id, "reason": reason}
        self._save()

    def _save(self) -> None:
        if not self.entries:
            self.path.unlink(missing_ok=True)
            return
        scratch = self.path.with_name(self.path.name + ".tmp")
        with open(scratch, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=REJECTED_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(self.entries.values())
        os.replace(scratch, self.path)


def rejection_reason(error: BaseException) -> str:
    """One line: the exception's type and first line of message."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def run_variations(
    dataset: Dataset,
    plan: Sequence[PlannedVariation],
    writer: DatasetWriter,
    entry: Any,
    generator: Any,
    *,
    device: Any,
    concurrency: int = 1,
    max_requests: int | None = None,
    allow_upload: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Make the planned variations not yet in `writer`, writing each as it arrives.

    `entry` is the generator's registry entry (its `tag` fills the `generator` column),
    `generator` the object its factory built. At most `max_requests` tasks are handed to
    the generator in this run. Each variation keeps its source's split, label and subject,
    so a variation of a val/test image never lands in train (the leakage rule). Returns
    {"planned", "already_done", "requested", "written", "rejected"}.
    """
    if concurrency < 1:
        raise _refuse(f"--concurrency {concurrency}: must be at least 1", writer)
    if max_requests is not None and max_requests < 0:
        raise _refuse(f"--max-requests {max_requests}: cannot be negative", writer)
    try:
        check_upload_permission(generator, allow_upload)
    except UsageError as refusal:
        raise _refuse(str(refusal), writer) from None

    planned_by_id = {variation_id(item.source["id"], entry.name, item.index): item for item in plan}
    pending = [row_id for row_id in planned_by_id if not writer.has(row_id)]
    already_done = len(planned_by_id) - len(pending)
    if max_requests is not None:
        pending = pending[:max_requests]

    store = _ResultStore(writer, entry, generator.columns(), planned_by_id, on_progress)
    store.rejected.forget([*pending, *(row_id for row_id in planned_by_id if writer.has(row_id))])
    requested = 0
    for start in range(0, len(pending), CHUNK_TASKS):
        chunk = pending[start : start + CHUNK_TASKS]
        tasks = _tasks(dataset, [planned_by_id[row_id] for row_id in chunk])
        requested += len(tasks)
        results = generator.vary(tasks, device=device, concurrency=concurrency)
        try:
            try:
                for task, result in results:
                    store.add(task, result)
            except KeyboardInterrupt:
                _drain(results, store)
                raise
            except UsageError as error:  # bad input found by the generator (a wrong key, a bad source)
                raise _refuse(str(error), writer) from None
        finally:
            close = getattr(results, "close", None)
            if close is not None:
                close()  # stops a generator's worker threads when we stop early
    check_leakage(writer.rows, dataset.rows, where=str(writer.out))
    return {
        "planned": len(planned_by_id),
        "already_done": already_done,
        "requested": requested,
        "written": store.written,
        "rejected": store.rejected_now,
    }


def _drain(results: Any, store: "_ResultStore") -> None:
    """After Ctrl-C, store what the generator still hands over, then let the interrupt go on.

    A Ctrl-C that lands here (not inside the generator) is passed into it with `throw`, so a
    generator that finishes its paid-for requests in flight (as `openai` does) can yield them;
    a generator that does not simply re-raises at once."""
    throw = getattr(results, "throw", None)
    if throw is None:
        return
    try:
        store.add(*throw(KeyboardInterrupt()))
        for task, result in results:
            store.add(task, result)
    except (StopIteration, KeyboardInterrupt):
        pass


class _ResultStore:
    """Writes each (task, image) as it arrives and records (task, exception) as rejected."""

    def __init__(self, writer, entry, columns, planned_by_id, on_progress) -> None:  # noqa: ANN001
        self.writer = writer
        self.entry = entry
        self.columns = dict(columns)
        self.planned_by_id = planned_by_id
        self.on_progress = on_progress
        self.rejected = RejectedLog(writer.tmp)
        self.written = 0
        self.rejected_now = 0

    def add(self, task: VariationTask, result: np.ndarray | BaseException) -> None:
        row_id = variation_id(task.source_id, self.entry.name, task.index)
        if row_id not in self.planned_by_id or self.writer.has(row_id):
            return  # not asked for, or answered twice: never store an image twice
        source = self.planned_by_id[row_id].source
        if isinstance(result, BaseException):
            self.rejected.add(row_id, source["id"], rejection_reason(result))
            self.rejected_now += 1
        else:
            _check_result(result, task, self.entry)
            self.writer.add_image(
                from_chw(result),
                id=row_id,
                label=source["label"],
                split=source["split"],  # a held-out image's variation stays held out (leakage rule)
                source="synthetic",
                origin=source["id"],
                subject=source.get("subject", ""),
                generator=self.entry.tag,
                seed=task.seed,
                **self.columns,
            )
            self.written += 1
        if self.on_progress is not None:
            self.on_progress(1)


def _tasks(dataset: Dataset, items: Sequence[PlannedVariation]) -> list[VariationTask]:
    """VariationTasks with their source pixels as uint8 (C, H, W), each source decoded once."""
    unique = list({item.source["id"]: item.source for item in items}.values())
    pixels = dataset.load_images(unique)
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)  # generators work on 8-bit images
    index_of = {row["id"]: i for i, row in enumerate(unique)}
    return [
        VariationTask(
            source_id=item.source["id"],
            label=item.source["label"],
            index=item.index,
            pixels=pixels[index_of[item.source["id"]]],
            seed=item.seed,
        )
        for item in items
    ]


def _check_result(result: Any, task: VariationTask, entry: Any) -> None:
    if not isinstance(result, np.ndarray) or result.dtype != np.uint8 or result.shape != task.pixels.shape:
        got = f"{result.dtype} {result.shape}" if isinstance(result, np.ndarray) else type(result).__name__
        raise SynthmedError(
            f"generator {entry.tag} returned {got} for {task.source_id!r}; expected uint8 {task.pixels.shape} (a plugin bug)"
        )

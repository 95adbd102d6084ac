"""Image-conditional generation: plan which variations to make, then make them resumably.

`synthmed generate` calls these for generators registered with `conditioning="image"` (whose
`vary(tasks, device=..., concurrency=...)` yields `(task, image or exception)` pairs); they
are plain functions so scripts and benchmarks can drive them without the CLI.

    plan = plan_variations(dataset, per_image=2, seed=0, generator=entry.name)
    with DatasetWriter(out, classes=dataset.classes, command="generate", resumable=True) as writer:
        summary = run_variations(dataset, plan, writer, entry, generator, device="cpu")

The output's own journal (`DatasetWriter`) is the resume record: a planned id whose row is
written is never handed to the generator again. Tasks the generator rejects go to
`rejected.csv` in the output; they made no image, and `--resume` tries them again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from synthmed.data.imageio import from_chw
from synthmed.data import check_leakage, Dataset, DatasetWriter, RejectedLog, rejection_reason, Row, SPLITS, written_ids
from synthmed.devices import take_shard
from synthmed.errors import SynthmedError, UsageError
from synthmed.parsing import comma_list, env_flag
from synthmed.progress import Progress, no_progress, start_task
from synthmed.protocols import VariationTask
from synthmed.seeding import derive_seed

ALLOW_UPLOAD_ENV = "SYNTHMED_ALLOW_UPLOAD"
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
    """Row id of a variation: `<source id>--<generator>-<index:03d>`, so it names its source."""
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
    splits = tuple(comma_list(splits) or ())  # "train,val" as typed after --splits, or a list
    if (counts is None) == (per_image is None):
        raise UsageError("give either --per-image K or per-class counts (--per-class/--ratio/--balance), not both or neither")
    if per_image is not None and per_image < 1:
        raise UsageError(f"--per-image {per_image}: must be at least 1")
    for split in splits:
        if split not in SPLITS:
            raise UsageError(f"--splits {','.join(splits)}: {split!r} is not one of {', '.join(SPLITS)}")
    if not splits:
        raise UsageError(f"--splits: give at least one of {', '.join(SPLITS)}")
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
    """The planned variations `--resume` on OUT would still make (for `--dry-run --resume`):
    read from OUT's journal (or a finished OUT) without opening a writer, so nothing is written."""
    done = written_ids(out)
    return [item for item in plan if variation_id(item.source["id"], generator, item.index) not in done]


def check_limits(*, concurrency: int, max_requests: int | None) -> None:
    """--concurrency and --max-requests, the one place they are checked."""
    if concurrency < 1:
        raise UsageError(f"--concurrency {concurrency}: must be at least 1")
    if max_requests is not None and max_requests < 1:
        raise UsageError(f"--max-requests {max_requests}: must be at least 1")


def upload_allowed(allow_upload: bool = False) -> bool:
    """`--allow-upload`, or SYNTHMED_ALLOW_UPLOAD set to 1, true, yes or on (anything else set
    there is refused: `synthmed.parsing.env_flag`)."""
    return allow_upload or env_flag(ALLOW_UPLOAD_ENV)


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
    progress: Progress = no_progress,
) -> dict[str, int]:
    """Make the planned variations not yet in `writer`, writing each as it arrives.

    `entry` is the generator's registry entry (its `tag` fills the `generator` column),
    `generator` the object its factory built. At most `max_requests` tasks are handed to
    the generator in this run. Each variation keeps its source's split, label and subject,
    so a variation of a val/test image never lands in train (the leakage rule). Returns
    {"planned", "already_done", "requested", "written", "rejected"}.
    """
    try:
        check_limits(concurrency=concurrency, max_requests=max_requests)
        check_upload_permission(generator, allow_upload)
    except UsageError as refusal:
        raise _refuse(str(refusal), writer) from None

    planned_by_id = {variation_id(item.source["id"], entry.name, item.index): item for item in plan}
    pending = [row_id for row_id in planned_by_id if not writer.has(row_id)]
    already_done = len(planned_by_id) - len(pending)
    if max_requests is not None:
        pending = pending[:max_requests]

    made = start_task(progress, "variations", total=len(planned_by_id), unit="img")
    store = _ResultStore(writer, entry, generator.columns(), planned_by_id, made)
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
    made.finish()
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

    def __init__(self, writer, entry, columns, planned_by_id, advance) -> None:  # noqa: ANN001
        self.writer = writer
        self.entry = entry
        self.columns = dict(columns)
        self.planned_by_id = planned_by_id
        self.advance = advance
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
        self.advance(1)


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

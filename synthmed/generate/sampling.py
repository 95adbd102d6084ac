"""Fitting a class-conditional generator and sampling it per class, resumably."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from synthmed.data import Dataset, DatasetWriter, Row
from synthmed.errors import UsageError
from synthmed.progress import Progress, no_progress, start_task
from synthmed.protocols import CountsFitSteps, ResumableFit, SamplesPerSeed
from synthmed.registry import Entry
from synthmed.seeding import derive_seed


def fit_rows(dataset: Dataset, classes: Sequence[str], min_images: int) -> list[Row]:
    """The real train rows a fit uses; every chosen class needs `min_images` of them."""
    dataset.require_uniform_size()
    rows = dataset.select(split="train", source="real", labels=list(classes))
    counts = {label: 0 for label in classes}
    for row in rows:
        counts[row["label"]] += 1
    for label, count in counts.items():
        if count < min_images:
            raise UsageError(f"class {label!r} has {count} real train image(s) in {dataset.root}; fitting needs at least "
                             f"{min_images} per class (leave it out with --classes)")
    return rows


MAX_TIMED_EPOCHS = 100_000  # the epoch bound of a fit that --fit-minutes stops


def fit_generator(generator: Any, dataset: Dataset, rows: Sequence[Row], *, epochs: int | None, device: Any,
                  seed: int, state_dir: Path | None, progress: Progress = no_progress,
                  minutes: float | None = None, check: Any = None) -> int:
    """`generator.fit` on the rows' images, reported as one task (in optimizer steps when the
    generator can tell how many there will be); with `minutes` it stops on time, with `check`
    (a `synthmed.generate.selection.FitCheck`) it keeps the best checkpoint and may stop early.
    Returns the number of epochs fitted."""
    images = dataset.load_images(rows)
    labels = dataset.label_indices(rows)
    if minutes is not None:
        epochs = MAX_TIMED_EPOCHS
    total = generator.fit_steps(labels, epochs) if isinstance(generator, CountsFitSteps) and minutes is None else None
    timed: dict[str, Any] = {"minutes": minutes} if minutes is not None else {}
    if check is not None:
        timed["check"] = check
    with start_task(progress, f"fitting {generator.name}", total=total, unit="step") as task:
        if isinstance(generator, ResumableFit):
            generator.fit(images, labels, epochs=epochs, device=device, seed=seed, progress=task,
                          num_classes=len(dataset.classes), state_dir=state_dir, **timed)
        else:
            generator.fit(images, labels, epochs=epochs, device=device, seed=seed, progress=task, **timed)
    return int(getattr(generator, "epochs_done", epochs)) if minutes is not None or check is not None else epochs


def row_id(generator_name: str, label: str, seed: int, index: int) -> str:
    return f"{generator_name}-{label}-s{seed}-{index:05d}"


def image_seed(seed: int, generator_name: str, label: str, index: int) -> int:
    return derive_seed(seed, generator_name, label, index)


@dataclass
class SamplingPlan:
    """The (label, index) pairs of this shard that are not written yet."""

    todo: dict[str, list[int]] = field(default_factory=dict)
    already_done: int = 0

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.todo.values())


def plan_sampling(counts: dict[str, int], *, generator_name: str, seed: int, shard: tuple[int, int],
                  done: Callable[[str], bool] = lambda _id: False) -> SamplingPlan:
    from synthmed.devices import take_shard

    plan = SamplingPlan()
    for label, count in counts.items():
        mine = take_shard(list(range(count)), shard)
        todo = [i for i in mine if not done(row_id(generator_name, label, seed, i))]
        plan.already_done += len(mine) - len(todo)
        if todo:
            plan.todo[label] = todo
    return plan


def sample_into(writer: DatasetWriter, generator: Any, entry: Entry, dataset: Dataset, plan: SamplingPlan, *,
                seed: int, device: Any, batch_size: int = 64, progress: Progress = no_progress) -> int:
    """Sample every planned image and write it at once (the writer's journal is the resume record)."""
    from synthmed.data.imageio import from_chw

    advance = start_task(progress, "sampling", total=plan.total, unit="img")
    written = 0
    batched = isinstance(generator, SamplesPerSeed)
    for label, indices in plan.todo.items():
        class_index = dataset.classes.index(label)
        for start in range(0, len(indices), batch_size if batched else 1):
            chunk = indices[start : start + (batch_size if batched else 1)]
            seeds = [image_seed(seed, entry.name, label, i) for i in chunk]
            if batched:
                images = generator.sample_seeds(class_index, seeds, device=device)
            else:
                images = generator.sample(class_index, 1, seed=seeds[0], device=device)
            for index, image_seed_, pixels in zip(chunk, seeds, images):
                writer.add_image(from_chw(np.ascontiguousarray(pixels)), id=row_id(entry.name, label, seed, index),
                                 label=label, split="train", source="synthetic", generator=entry.tag, seed=image_seed_)
                written += 1
            advance(len(chunk))
    advance.finish()
    return written

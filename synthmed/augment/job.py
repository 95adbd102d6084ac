"""`synthmed augment`: write augmented copies of dataset images as new rows.

Each augmented image is a task (source row, copy index) with its own seed
`derive_seed(seed, "augment", source_id, index)`. Built-in policies draw every random number
of an image from a CPU generator seeded with that seed (`policy(x, generators=...)`), so an
image is the same whatever batch, shard or resumed run makes it; a plugin policy without that
support is run one image at a time after `torch.manual_seed(image seed)`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from synthmed.data import COLUMNS, SPLITS, Dataset, DatasetWriter, iter_chunks, Row, RunOptions
from synthmed.errors import UsageError
from synthmed.progress import Progress, no_progress, start_task
from synthmed.seeding import derive_seed

ORIGINAL_COLUMNS = set(COLUMNS)


@dataclass(frozen=True)
class AugmentTask:
    source: Row
    index: int
    seed: int

    @property
    def id(self) -> str:
        return f"{self.source['id']}--aug-{self.index:03d}"


def plan_augmentation(
    dataset: Dataset,
    *,
    copies: int | None = 1,
    balance: bool = False,
    splits: Sequence[str] = ("train",),
    classes: Sequence[str] | None = None,
    seed: int = 0,
) -> list[AugmentTask]:
    """Tasks in a stable order. Without `balance`, `copies` per selected image; with it, each
    selected class of a split gets as many as it needs to reach that split's largest class,
    spread evenly over its images (the first images by id get one more).

    Real and synthetic images are augmented, augmented ones are not (no augmentation of
    augmentations). Copy numbers already used by rows of the input (a dataset augmented
    before) are skipped, so a second `augment` adds new ids with new seeds."""
    selected = dataset.select(split=list(splits), labels=classes, source=["real", "synthetic"])
    taken = {row["id"] for row in dataset.rows}
    tasks: list[AugmentTask] = []

    def add(row: Row, count: int) -> None:
        index = 0
        for _ in range(count):
            index += 1
            while f"{row['id']}--aug-{index:03d}" in taken:
                index += 1
            tasks.append(AugmentTask(row, index, derive_seed(seed, "augment", row["id"], index)))

    if not balance:
        for row in selected:
            add(row, int(copies or 1))
        return tasks
    for split in splits:
        counts = Counter(row["label"] for row in dataset.select(split=split))
        if not counts:
            continue
        target = max(counts.values())
        for label in dataset.classes:
            sources = sorted((r for r in selected if r["split"] == split and r["label"] == label), key=lambda r: r["id"])
            missing = target - counts[label]
            if not sources or missing <= 0:
                continue
            for position, row in enumerate(sources):
                add(row, missing // len(sources) + (1 if position < missing % len(sources) else 0))
    return tasks


def _store(images: Any, bit_depth: int) -> Any:
    """float (N, C, H, W) in [0, 1] -> uint8/uint16 numpy (N, C, H, W)."""
    import numpy as np
    import torch

    scale = 65535.0 if bit_depth > 8 else 255.0
    stored = (images.clamp(0.0, 1.0) * scale).round_().to("cpu", torch.float64).numpy()
    return stored.astype(np.uint16 if bit_depth > 8 else np.uint8)


def run_policy(policy: Callable[..., Any], x: Any, seeds: Sequence[int]) -> Any:
    """Apply a policy to a batch, each image's randomness from its own seed."""
    import torch

    from synthmed.augment import supports_generators

    if supports_generators(policy):
        return policy(x, generators=[torch.Generator().manual_seed(s) for s in seeds])
    out = []
    with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
        for i, s in enumerate(seeds):
            torch.manual_seed(s)
            out.append(policy(x[i : i + 1]))
    return torch.cat(out)


def augment_dataset(
    dataset: Dataset,
    out: Path,
    *,
    policy_spec: str,
    copies: int | None = 1,
    balance: bool = False,
    splits: Sequence[str] = ("train",),
    classes: Sequence[str] | None = None,
    only_augmented: bool = False,
    seed: int = 0,
    device: Any = "cpu",
    batch_size: int = 64,
    shard: tuple[int, int] = (0, 1),
    overwrite: bool = False,
    resume: bool = False,
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """Write the augmented dataset to `out`; returns counts. Options are checked before any work."""
    from synthmed.augment import build_policy, policy_tag
    from synthmed.devices import take_shard
    from synthmed.batches import to_unit_float
    from synthmed.data.imageio import from_chw

    if copies is not None and copies < 1:
        raise UsageError(f"--copies {copies}: must be at least 1 (each selected image gets that many augmented copies)")
    if balance and copies is not None:
        raise UsageError("--balance and --copies exclude each other: --balance adds as many copies as each class needs")
    if batch_size < 1:
        raise UsageError(f"--batch-size {batch_size}: must be at least 1")
    unknown_splits = [s for s in splits if s not in SPLITS]
    if unknown_splits:
        raise UsageError(f"--splits {unknown_splits[0]!r}: not one of {', '.join(SPLITS)}")
    if classes:
        unknown = [c for c in classes if c not in dataset.classes]
        if unknown:
            raise UsageError(f"--classes {unknown[0]!r}: not a class of {dataset.root}; classes are {', '.join(dataset.classes)}")
    dataset.require_uniform_size()
    policy = build_policy(policy_spec, channels=dataset.channels)
    tag = policy_tag(policy_spec, channels=dataset.channels)

    tasks = take_shard(plan_augmentation(dataset, copies=copies, balance=balance, splits=splits, classes=classes, seed=seed), shard)
    originals = [] if only_augmented else take_shard(list(dataset.rows), shard)
    if not tasks and not originals:
        raise UsageError(f"{dataset.root}: nothing to write (no images in --splits {','.join(splits)} for these classes)")
    dataset.check_images(list({id(r): r for r in [t.source for t in tasks] + originals}.values()))
    options = RunOptions("augment", {
        "--policy": tag, "--copies": None if balance else int(copies or 1), "--balance": balance, "--splits": list(splits),
        "--classes": list(classes) if classes else None, "--only-augmented": only_augmented, "--seed": seed,
        "--shard": f"{shard[0] + 1}/{shard[1]}",
    })

    with DatasetWriter(
        out,
        classes=dataset.classes,
        command="augment",
        parents=[dataset.root],
        overwrite=overwrite,
        resume=resume,
        resumable=True,
        options=options,
        info={"augmentation": {"policy": tag, "seed": seed}},
    ) as writer:
        pending_originals = [row for row in originals if not writer.has(row["id"])]
        pending = [task for task in tasks if not writer.has(task.id)]
        made = start_task(progress, "augmenting", total=len(pending_originals) + len(pending), unit="img")
        for row in pending_originals:
            writer.add_file(dataset.path_of(row), row)
            made(1)
        for batch in iter_chunks(pending, batch_size):
            pixels = dataset.load_images([task.source for task in batch])
            augmented = _store(run_policy(policy, to_unit_float(pixels, device=device), [t.seed for t in batch]), dataset.bit_depth)
            for task, image in zip(batch, augmented):
                extra = {k: v for k, v in task.source.items() if k not in ORIGINAL_COLUMNS}
                writer.add_image(
                    from_chw(image),
                    id=task.id,
                    label=task.source["label"],
                    split=task.source["split"],
                    source="augmented",
                    origin=task.source["id"],
                    subject=task.source["subject"],
                    generator=tag,
                    seed=task.seed,
                    **extra,
                )
            made(len(batch))
        made.finish()
    return {
        "policy": tag,
        "augmented": len(tasks),
        "originals": len(originals),
        "already_done": len(tasks) + len(originals) - len(pending) - len(pending_originals),
    }

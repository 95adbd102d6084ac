"""Training classifiers: `train_run` is what `synthmed train` calls; `fit` is the loop itself.

Speed comes from doing no per-image Python work inside an epoch: the dataset is decoded once
into a uint8 tensor (on the GPU when it fits), every epoch is a seeded permutation, a batch is
one index into that tensor, and scaling, augmentation and standardisation run on the device.
Under `torchrun` each rank takes its slice of every batch and DistributedDataParallel averages
the gradients; rank 0 writes the output.
"""

from __future__ import annotations

import csv
import math
import os
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from synthmed.checkpoint import save_checkpoint
from synthmed.dataset import Dataset, OutputFolder, Row, check_leakage, origins_of, refuse_output_over_inputs
from synthmed.engine.batches import standardize, to_unit_float
from synthmed.engine.evaluation import predict_logits
from synthmed.errors import UsageError
from synthmed.models.classifiers import describe, freeze_backbone, load_pretrained, set_train_mode
from synthmed.registry import Entry, get_entry
from synthmed.seeding import derive_seed, seed_everything

AMP_MODES = ("auto", "bf16", "fp16", "off")
HISTORY_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds", "train_seconds")


@dataclass
class TrainSettings:
    """Everything that shapes a training run (recorded in each model's config.json)."""

    model: str = "cnn-basic"
    model_args: dict[str, Any] = field(default_factory=dict)
    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 2
    class_weights: bool = False
    augment: str = "none"
    weights: str | None = None
    freeze_backbone: bool = False
    amp: str = "auto"
    val_fraction: float | None = None


@dataclass
class SplitTensors:
    """One split decoded once: uint8 images (N, C, H, W) and int64 labels, on `images.device`."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class TrainingData:
    classes: list[str]
    channels: int
    image_size: tuple[int, int]
    normalization: dict[str, list[float]]
    train: SplitTensors
    val: SplitTensors
    notes: list[str]


@dataclass(frozen=True)
class Distributed:
    """This process's place in a `torchrun` job (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


# --------------------------------------------------------------------------- checks and data


def check_settings(settings: TrainSettings, *, repeats: int) -> None:
    """Option values that are wrong whatever the data (checked before anything is read)."""
    if repeats < 1:
        raise UsageError(f"--repeats {repeats}: must be at least 1")
    if settings.epochs < 1:
        raise UsageError(f"--epochs {settings.epochs}: must be at least 1")
    if settings.batch_size < 2:
        raise UsageError(f"--batch-size {settings.batch_size}: must be at least 2")
    if not settings.lr > 0:
        raise UsageError(f"--lr {settings.lr}: must be positive")
    if settings.weight_decay < 0:
        raise UsageError(f"--weight-decay {settings.weight_decay}: must not be negative")
    if settings.patience < 1:
        raise UsageError(f"--patience {settings.patience}: must be at least 1")
    if settings.amp not in AMP_MODES:
        raise UsageError(f"--amp {settings.amp!r}: expected one of {', '.join(AMP_MODES)}")
    if settings.val_fraction is not None and not 0 < settings.val_fraction < 1:
        raise UsageError(f"--val-fraction {settings.val_fraction}: must be between 0 and 1")


def check_image_size(entry: Entry, size: tuple[int, int], *, where: str) -> None:
    """The dataset's image size against what the registered classifier accepts."""
    smallest = int(entry.meta.get("min_size", 1))
    multiple = int(entry.meta.get("size_multiple", 1))
    if min(size) < smallest:
        raise UsageError(f"{where}: images are {size[0]}x{size[1]} px, classifier {entry.name!r} needs at least "
                         f"{smallest} px; run `synthmed preprocess --size N` or pick another --model")
    if size[0] % multiple or size[1] % multiple:
        raise UsageError(f"{where}: images are {size[0]}x{size[1]} px, classifier {entry.name!r} needs sides that "
                         f"are multiples of {multiple}; run `synthmed preprocess --size N`")


def split_train_val(dataset: Dataset, *, val_fraction: float | None, seed: int) -> tuple[list[Row], list[Row], list[str]]:
    """The train and val rows; with `val_fraction` (and no val split) a val split is carved out of
    the real train images by subject, per class, and train rows made from them are dropped."""
    train, val = dataset.select("train"), dataset.select("val")
    if not train:
        raise UsageError(f"{dataset.root}: no train split to train on")
    if val and val_fraction is not None:
        raise UsageError(f"--val-fraction: {dataset.root} already has a val split; drop the option to use it")
    if val:
        return train, val, []
    if val_fraction is None:
        raise UsageError(f"{dataset.root}: no val split (needed for early stopping); "
                         "pass --val-fraction 0.15 to carve one out of train by subject")
    carved: list[Row] = []
    too_few: list[str] = []
    for label in dataset.classes:
        real = [row for row in train if row["label"] == label and row["source"] == "real"]
        # Group by subject so a patient never spans train and val; rows without one stand alone.
        groups: dict[str, list[Row]] = {}
        for row in real:
            groups.setdefault(row["subject"] or f"id:{row['id']}", []).append(row)
        if len(groups) < 2:
            too_few.append(label)  # one subject cannot be both trained on and validated on
            continue
        keys = sorted(groups)
        order = np.random.default_rng(derive_seed(seed, "val-split", label)).permutation(len(keys))
        take = min(len(keys) - 1, max(1, round(val_fraction * len(keys))))
        for k in order[:take]:
            carved.extend(groups[keys[k]])
    carved_ids = {row["id"] for row in carved}
    carved_subjects = {row["subject"] for row in carved if row["subject"]}
    kept, dropped = [], 0
    for row in train:
        if row["id"] in carved_ids:
            continue
        if row["subject"] in carved_subjects or any(o in carved_ids for o in origins_of(row)):
            dropped += 1  # made from (or sharing a subject with) a carved val image: would leak
            continue
        kept.append(row)
    val_rows = [{**row, "split": "val"} for row in carved]
    notes = [f"carved a val split of {len(val_rows)} images ({val_fraction:.0%} of train subjects per class)"]
    if too_few:
        notes.append(f"no val images for {', '.join(too_few)}: fewer than 2 train subjects")
    if dropped:
        notes.append(f"dropped {dropped} train images made from carved val images")
    return kept, val_rows, notes


def check_training_rows(dataset: Dataset, train: Sequence[Row], val: Sequence[Row]) -> None:
    missing = [label for label in dataset.classes if not any(row["label"] == label for row in train)]
    if missing:
        raise UsageError(f"{dataset.root}: class {missing[0]!r} has no train images; every class in "
                         "dataset.json needs some (or remove the class)")
    if not val:
        raise UsageError(f"{dataset.root}: the val split is empty")


def load_split(dataset: Dataset, rows: Sequence[Row], device: torch.device) -> SplitTensors:
    images = torch.from_numpy(dataset.load_images(rows))
    if images.dtype != torch.uint8:  # 16-bit data: kept as int32 so indexing and .float() work everywhere
        images = images.to(torch.int32)
    labels = torch.from_numpy(dataset.label_indices(rows))
    return SplitTensors(images.to(device), labels.to(device))


def data_device(dataset: Dataset, n_images: int, device: torch.device) -> torch.device:
    """Keep the decoded images on the GPU when they take at most a quarter of its free memory."""
    if device.type != "cuda":
        return torch.device("cpu")
    height, width = dataset.require_uniform_size()
    size = n_images * dataset.channels * height * width * (1 if dataset.bit_depth <= 8 else 4)
    free, _ = torch.cuda.mem_get_info(device)
    return device if size <= free // 4 else torch.device("cpu")


def load_training_data(dataset: Dataset, train: Sequence[Row], val: Sequence[Row], device: torch.device,
                       notes: list[str]) -> TrainingData:
    where = data_device(dataset, len(train) + len(val), device)
    stats = dataset.stats
    return TrainingData(
        classes=dataset.classes,
        channels=dataset.channels,
        image_size=dataset.require_uniform_size(),
        normalization={"mean": list(stats["mean"]), "std": list(stats["std"])},
        train=load_split(dataset, train, where),
        val=load_split(dataset, val, where),
        notes=notes,
    )


def class_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Inverse-frequency weights n / (K * n_k), so every class counts as much in the loss."""
    counts = torch.bincount(labels.cpu(), minlength=num_classes).float()
    return counts.sum() / (num_classes * counts.clamp(min=1))


def resolve_amp(mode: str, device: torch.device) -> torch.dtype | None:
    """Mixed precision only on CUDA: bf16 where supported, else fp16 (with a gradient scaler)."""
    if mode == "off" or (mode == "auto" and device.type != "cuda"):
        return None
    if device.type != "cuda":
        raise UsageError(f"--amp {mode}: mixed precision is only used on CUDA; use --amp off on {device.type}")
    if mode == "bf16" or (mode == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


# --------------------------------------------------------------------------- model


def build_classifier(entry: Entry, data: TrainingData, settings: TrainSettings) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The module with fresh (or `--weights`) parameters, and the builder arguments that rebuild it."""
    args = {
        "num_classes": len(data.classes),
        "in_channels": data.channels,
        "image_size": list(data.image_size),
        **settings.model_args,
    }
    try:
        module = entry.factory(**args)
    except TypeError as exc:
        raise UsageError(f"--model-arg: classifier {entry.name!r} does not take these arguments ({exc})") from None
    head = entry.meta.get("head")
    if settings.weights:
        load_pretrained(module, Path(settings.weights), head=head)
    if settings.freeze_backbone:
        freeze_backbone(module, head, name=entry.name)
    return module, args


# --------------------------------------------------------------------------- the loop


def fit(
    module: torch.nn.Module,
    data: TrainingData,
    settings: TrainSettings,
    *,
    seed: int,
    device: torch.device,
    head: str | None,
    dist: Distributed = Distributed(),
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[list[dict[str, float]], int]:
    """Train `module` in place and leave it holding the weights of its best epoch (lowest
    val loss). Returns (history rows, best epoch). `clock` times the epochs (the benchmark
    passes time.process_time, which other processes' load does not disturb)."""
    from synthmed.augment import build_policy

    model = module.to(device)
    trainer = model
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        trainer = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad],
                                 lr=settings.lr, weight_decay=settings.weight_decay)
    policy = build_policy(settings.augment, channels=data.channels)
    amp_dtype = resolve_amp(settings.amp, device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    weight = class_weights(data.train.labels, len(data.classes)).to(device) if settings.class_weights else None
    mean = torch.tensor(data.normalization["mean"], device=device)
    std = torch.tensor(data.normalization["std"], device=device)
    autocast = (lambda: torch.autocast(device.type, dtype=amp_dtype)) if amp_dtype is not None else nullcontext
    # Batch order is the same on every rank; augmentation randomness differs per rank.
    order_rng = torch.Generator().manual_seed(derive_seed(seed, "batch-order"))
    seed_everything(derive_seed(seed, "augment", dist.rank))

    images, labels = data.train.images, data.train.labels
    n_train = len(data.train)
    history: list[dict[str, float]] = []
    best_loss, best_epoch, best_state, stale = math.inf, 0, None, 0
    for epoch in range(1, settings.epochs + 1):
        started = clock()
        set_train_mode(model, head=head, frozen=settings.freeze_backbone)
        order = torch.randperm(n_train, generator=order_rng).to(images.device)
        totals = torch.zeros(3, device=device)  # loss sum, correct, seen (one sync per epoch, not per batch)
        for start in range(0, n_train, settings.batch_size):
            batch = order[start : start + settings.batch_size]
            if len(batch) < 2 * dist.world:
                break  # a last batch too small to give every rank 2 images (batch norm needs 2)
            index = batch[dist.rank :: dist.world]
            x = to_unit_float(images[index], device=device)
            x = standardize(policy(x), mean, std)
            y = labels[index].to(device, non_blocking=True)
            with autocast():
                logits = trainer(x)
            loss_sum = F.cross_entropy(logits.float(), y, weight=weight, reduction="sum")
            # Divide by the whole batch's weight (not this rank's share): after DDP averages the
            # gradients over ranks, they equal the single-process gradient of the batch mean.
            batch_weight = weight[labels[batch].to(device)].sum() if weight is not None else len(batch)
            loss = loss_sum * dist.world / batch_weight
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            with torch.no_grad():
                totals[0] += loss_sum.detach()
                totals[1] += (logits.argmax(1) == y).sum()
                totals[2] += len(y)
        if dist.world > 1:
            torch.distributed.all_reduce(totals)
        train_loss, train_correct, seen = totals.tolist()  # also waits for the GPU
        train_seconds = clock() - started
        # Every rank scores the whole val split, so all reach the same early-stopping decision.
        val_logits = predict_logits(model, data.val.images, data.normalization, device=device,
                                    batch_size=max(64, settings.batch_size), amp_dtype=amp_dtype)
        val_labels = data.val.labels.to(device)
        val_scores = torch.stack([F.cross_entropy(val_logits, val_labels),
                                  (val_logits.argmax(1) == val_labels).float().mean()])
        if dist.world > 1:
            torch.distributed.broadcast(val_scores, 0)  # GPU results may differ in the last bit across ranks
        val_loss, val_accuracy = val_scores.tolist()
        record = {
            "epoch": epoch,
            "train_loss": train_loss / max(seen, 1),
            "train_accuracy": train_correct / max(seen, 1),
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
            "seconds": clock() - started,
            "train_seconds": train_seconds,
        }
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if val_loss < best_loss:
            best_loss, best_epoch, stale = val_loss, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
            if stale >= settings.patience:
                break  # early stopping: `patience` epochs without a lower val loss
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history, best_epoch


# --------------------------------------------------------------------------- outputs


def write_history(folder: Path, history: Sequence[dict[str, float]]) -> None:
    with open(folder / "history.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for record in history:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in record.items()})


def plot_curves(folder: Path, history: Sequence[dict[str, float]], best_epoch: int, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, metric in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        ax.plot(epochs, [r[f"train_{metric}"] for r in history], marker="o", label="train")
        ax.plot(epochs, [r[f"val_{metric}"] for r in history], marker="o", label="val")
        ax.axvline(best_epoch, color="gray", linestyle=":", label=f"best epoch {best_epoch}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(folder / "curves.png", dpi=100)
    plt.close(fig)


# --------------------------------------------------------------------------- the command


def distributed_from_env() -> Distributed:
    """Rank and world size set by `torchrun` (none: a single process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    return Distributed(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def init_distributed(dist: Distributed, device: torch.device) -> None:
    if dist.world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")


def repeat_seed(seed: int, repeat: int) -> int:
    """Repeat r's seed: run-01 of `--repeats 5` equals a single run with the same --seed."""
    return derive_seed(seed, "repeat", repeat)


def train_run(
    dataset_path: Path,
    out: Path,
    settings: TrainSettings,
    *,
    repeats: int = 1,
    seed: int = 0,
    device: torch.device,
    overwrite: bool = False,
    dist: Distributed = Distributed(),
    on_start: Callable[[int, int], None] | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Train `repeats` classifiers on a dataset into RUN (one model folder, or run-01/...).

    Everything the user can get wrong is checked before the output folder is created.
    `on_start(repeat, epochs)` and `on_epoch(repeat, record)` report progress."""
    check_settings(settings, repeats=repeats)
    out = Path(out)
    refuse_output_over_inputs(out, [dataset_path, settings.weights])
    # Checked on every rank (OutputFolder repeats it on rank 0), so no rank is left waiting.
    if out.exists() and not overwrite:
        raise UsageError(f"output {out} exists; pass --overwrite to replace it")
    if not out.parent.is_dir():
        raise UsageError(f"output {out}: parent folder {out.parent} does not exist")
    entry = get_entry("classifier", settings.model)
    dataset = Dataset.open(dataset_path)
    size = dataset.require_uniform_size()
    check_image_size(entry, size, where=str(dataset.root))
    check_leakage(dataset.rows, where=str(dataset.root))
    train_rows, val_rows, notes = split_train_val(dataset, val_fraction=settings.val_fraction, seed=seed)
    check_training_rows(dataset, train_rows, val_rows)
    if len(train_rows) < 2 * dist.world:
        raise UsageError(f"{dataset.root}: {len(train_rows)} train images are too few for {dist.world} processes")
    if settings.weights and not Path(settings.weights).is_file():
        raise UsageError(f"--weights {settings.weights}: no such file")
    resolve_amp(settings.amp, device)
    from synthmed.augment import build_policy

    build_policy(settings.augment, channels=dataset.channels)  # an unknown policy fails here, not mid-run
    if settings.freeze_backbone and not settings.weights:
        notes.append("--freeze-backbone without --weights: only a head is trained, on random features")
    data = load_training_data(dataset, train_rows, val_rows, device, notes)
    # Build once before anything is written: bad --model-arg/--weights fail here, not mid-run.
    probe, _ = build_classifier(entry, data, settings)
    model_size = describe(probe)
    del probe

    folder = OutputFolder(out, inputs=[dataset_path, settings.weights], overwrite=overwrite) if dist.is_main else None
    try:
        runs = []
        for repeat in range(1, repeats + 1):
            run_seed = repeat_seed(seed, repeat)
            seed_everything(run_seed)
            module, args = build_classifier(entry, data, settings)
            if on_start is not None:
                on_start(repeat, settings.epochs)
            started = time.perf_counter()
            history, best_epoch = fit(
                module, data, settings, seed=run_seed, device=device, head=entry.meta.get("head"), dist=dist,
                on_epoch=None if on_epoch is None else (lambda record, r=repeat: on_epoch(r, record)),
            )
            best = history[best_epoch - 1]
            summary = {
                "repeat": repeat,
                "seed": run_seed,
                "epochs_run": len(history),
                "best_epoch": best_epoch,
                "val_loss": best["val_loss"],
                "val_accuracy": best["val_accuracy"],
                "seconds": round(time.perf_counter() - started, 3),
            }
            if folder is not None:
                target = folder.tmp if repeats == 1 else folder.tmp / f"run-{repeat:02d}"
                config = {
                    "kind": "classifier",
                    "name": entry.name,
                    "plugin": entry.plugin,
                    "version": entry.version,
                    "args": args,
                    "classes": data.classes,
                    "image_size": list(data.image_size),
                    "channels": data.channels,
                    "normalization": data.normalization,
                    "training": {
                        **asdict(settings),
                        "seed": run_seed,
                        "run_seed": seed,
                        "repeat": repeat,
                        "best_epoch": best_epoch,
                        "best_val_loss": best["val_loss"],
                        "dataset": str(Path(dataset_path).resolve()),
                        "train_images": len(data.train),
                        "val_images": len(data.val),
                        "processes": dist.world,
                        "notes": data.notes,
                    },
                }
                save_checkpoint(target, module, config)
                write_history(target, history)
                plot_curves(target, history, best_epoch, f"{entry.name} on {Path(dataset_path).name} (repeat {repeat})")
                summary["folder"] = str(out if repeats == 1 else out / target.name)
            runs.append(summary)
        result = {
            "model": entry.name,
            "repeats": repeats,
            "train_images": len(data.train),
            "val_images": len(data.val),
            **model_size,
            "notes": data.notes,
            "runs": runs,
        }
        if folder is not None:
            folder.write_provenance("train", [Path(dataset_path)], settings=asdict(settings), seed=seed,
                                    repeats=repeats, processes=dist.world)
            if repeats > 1:
                with open(folder.tmp / "runs.csv", "w", newline="", encoding="utf-8") as handle:
                    columns = ["repeat", "seed", "epochs_run", "best_epoch", "val_loss", "val_accuracy", "seconds"]
                    writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
                    writer.writeheader()
                    writer.writerows(runs)
            folder.commit()
        return result
    except BaseException:
        if folder is not None:
            folder.discard()
        raise

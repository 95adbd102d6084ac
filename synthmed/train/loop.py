"""The training loop: `fit` trains one classifier (`train_run` in run.py calls it per repeat).

Speed comes from doing no per-image Python work inside an epoch: the dataset is decoded once
into a uint8 tensor (on the GPU when it fits), every epoch is a seeded permutation, a batch is
one index into that tensor, and scaling, augmentation and standardisation run on the device.
Under `torchrun` each rank takes its slice of every batch and DistributedDataParallel averages
the gradients; rank 0 writes the output.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from synthmed.batches import predict_logits, standardize, to_unit_float
from synthmed.errors import UsageError
from synthmed.progress import Advance, no_advance
from synthmed.registry import ClassifierInfo, Entry, create_policy
from synthmed.seeding import derive_seed, seed_everything
from synthmed.train.data import class_weights, resolve_amp
from synthmed.train.models import (
    freeze_backbone,
    load_pretrained,
    set_train_mode,
)
from synthmed.train.settings import Distributed, TrainingData, TrainSettings


def build_classifier(entry: Entry[ClassifierInfo], data: TrainingData, settings: TrainSettings) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The module with fresh (or `--weights`) parameters, and the builder arguments that rebuild it."""
    args = {
        "num_classes": len(data.classes),
        "in_channels": data.channels,
        "image_size": list(data.image_size),
        **settings.classifier_args,
    }
    try:
        module = entry.factory(**args)
    except TypeError as exc:
        raise UsageError(f"--classifier-arg: classifier {entry.name!r} does not take these arguments ({exc})") from None
    head = entry.info.head
    if settings.weights:
        load_pretrained(module, Path(settings.weights), head=head)
    if settings.freeze_backbone:
        freeze_backbone(module, head, name=entry.name)
    return module, args




def training_layout(device: torch.device) -> torch.memory_format:
    """The memory layout `fit` gives the model's weights on `device`. On the CPU, oneDNN's
    convolutions run 10-30 % faster with channels-last weights (measured for every registered
    conv classifier, docs/benchmarks.md; a ViT neither gains nor loses); elsewhere unmeasured."""
    return torch.channels_last if device.type == "cpu" else torch.preserve_format


def fit(
    module: torch.nn.Module,
    data: TrainingData,
    settings: TrainSettings,
    *,
    seed: int,
    device: torch.device,
    head: str | None,
    dist: Distributed = Distributed(),
    advance: Advance = no_advance,
    clock: Callable[[], float] = time.perf_counter,
    state_dir: Path | None = None,
) -> tuple[list[dict[str, float]], int]:
    """Train `module` in place and leave it holding the weights of its best epoch (lowest
    val loss). Returns (history rows, best epoch). `advance(1, ...)` after each epoch, with
    its val loss and accuracy. `clock` times the epochs (the benchmark passes
    time.process_time, which other processes' load does not disturb).

    With `state_dir`, the state after each epoch (weights, optimizer, best epoch so far,
    history) is saved there by rank 0, and a saved state is continued from: every epoch draws
    its batch order and augmentation from seeds of its own, so a resumed fit equals an
    uninterrupted one."""
    from synthmed.fit_state import has_fit_state, load_fit_state, save_fit_state
    # The layout changes no result's meaning and is undone before the module is handed back.
    model = module.to(device, memory_format=training_layout(device))
    trainer = model
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        trainer = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad],
                                 lr=settings.lr, weight_decay=settings.weight_decay)
    policy = create_policy(settings.augment, channels=data.channels)
    amp_dtype = resolve_amp(settings.amp, device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    weight = class_weights(data.train.labels, len(data.classes)).to(device) if settings.class_weights else None
    mean = torch.tensor(data.normalization["mean"], device=device)
    std = torch.tensor(data.normalization["std"], device=device)
    autocast = (lambda: torch.autocast(device.type, dtype=amp_dtype)) if amp_dtype is not None else nullcontext
    images, labels = data.train.images, data.train.labels
    n_train = len(data.train)
    history: list[dict[str, float]] = []
    best_loss, best_epoch, best_state, stale = math.inf, 0, None, 0
    steps = 0  # optimizer steps so far: the budget --max-steps caps, recorded so runs compare on equal steps
    if has_fit_state(state_dir):
        saved: dict[str, Any] = {}
        meta = load_fit_state(state_dir, modules={"model": model}, optimizers={"adam": optimizer}, tensors=saved)
        if meta.get("seed") != seed:
            raise UsageError(f"{state_dir}: the epoch checkpoint was made with another seed; rerun without --resume")
        history, best_epoch, stale = meta["history"], meta["best_epoch"], meta["stale"]
        steps = int(history[-1]["steps"]) if history else 0
        best_loss = history[best_epoch - 1]["val_loss"] if best_epoch else math.inf
        best_state = {key[len("best/"):]: value.to(device) for key, value in saved.items() if key.startswith("best/")} or None
        if meta.get("scaler"):
            scaler.load_state_dict(meta["scaler"])
        advance(len(history))
        if meta.get("stopped"):
            model.load_state_dict(best_state)
            model.to(memory_format=torch.contiguous_format).eval()
            return history, best_epoch
    for epoch in range(len(history) + 1, settings.epochs + 1):
        started = clock()
        # Batch order is the same on every rank; augmentation randomness differs per rank.
        order_rng = torch.Generator().manual_seed(derive_seed(seed, "batch-order", epoch))
        seed_everything(derive_seed(seed, "augment", dist.rank, epoch))
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
            steps += 1
            with torch.no_grad():
                totals[0] += loss_sum.detach()
                totals[1] += (logits.argmax(1) == y).sum()
                totals[2] += len(y)
            if settings.max_steps is not None and steps >= settings.max_steps:
                break  # the budget ends mid-epoch: this partial epoch is still validated
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
            "steps": steps,
            "train_loss": train_loss / max(seen, 1),
            "train_accuracy": train_correct / max(seen, 1),
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
            "seconds": clock() - started,
            "train_seconds": train_seconds,
        }
        history.append(record)
        advance(1, **{"val loss": val_loss, "acc": val_accuracy})
        if val_loss < best_loss:
            best_loss, best_epoch, stale = val_loss, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
        # early stopping: `patience` epochs without a lower val loss, or the --max-steps budget spent
        stopped = stale >= settings.patience or (settings.max_steps is not None and steps >= settings.max_steps)
        if state_dir is not None and dist.is_main:
            save_fit_state(state_dir, modules={"model": model}, optimizers={"adam": optimizer},
                           tensors={f"best/{k}": v for k, v in (best_state or {}).items()},
                           meta={"seed": seed, "history": history, "best_epoch": best_epoch, "stale": stale,
                                 "stopped": stopped, "scaler": scaler.state_dict() if scaler.is_enabled() else None})
        if stopped:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.to(memory_format=torch.contiguous_format).eval()
    return history, best_epoch

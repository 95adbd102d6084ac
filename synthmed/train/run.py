"""`synthmed train`: N repeats of a classifier into a RUN folder, under torchrun when launched so."""

from __future__ import annotations

import csv
import os
import time
from dataclasses import asdict
from pathlib import Path
from contextlib import nullcontext
from typing import Any

import torch

from synthmed.checkpoint import save_checkpoint
from synthmed.data import check_leakage, Dataset, OutputFolder, refuse_output_over_inputs
from synthmed.errors import UsageError
from synthmed.progress import Progress, no_progress, start_task
from synthmed.registry import create_policy, get_entry
from synthmed.seeding import derive_seed, seed_everything
from synthmed.train.data import (
    check_training_rows,
    load_training_data,
    resolve_amp,
    split_train_val,
)
from synthmed.train.loop import build_classifier, fit
from synthmed.train.models import (
    describe,
)
from synthmed.train.report import plot_curves, plot_run_curves, write_history
from synthmed.train.settings import (
    Distributed,
    TrainSettings,
    check_image_size,
    check_settings,
)


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
    progress: Progress = no_progress,
    curves: bool = True,
) -> dict[str, Any]:
    """Train `repeats` classifiers on a dataset into RUN (one model folder, or run-01/...).

    Everything the user can get wrong is checked before the output folder is created. Each
    repeat is one task, advanced per epoch with its val loss and accuracy. `curves=False` skips
    curves.png (a caller that keeps only the numbers, such as a study)."""
    check_settings(settings, repeats=repeats)
    out = Path(out)
    refuse_output_over_inputs(out, [dataset_path, settings.weights])
    # Checked on every rank (OutputFolder repeats it on rank 0), so no rank is left waiting.
    if out.exists() and not overwrite:
        raise UsageError(f"output {out} exists; pass --overwrite to replace it")
    if not out.parent.is_dir():
        raise UsageError(f"output {out}: parent folder {out.parent} does not exist")
    entry = get_entry("classifier", settings.classifier)
    dataset = Dataset.open(dataset_path)
    size = dataset.require_uniform_size()
    check_image_size(entry, size, channels=dataset.channels, where=str(dataset.root))
    check_leakage(dataset.rows, where=str(dataset.root))
    train_rows, val_rows, notes = split_train_val(dataset, val_fraction=settings.val_fraction, seed=seed)
    check_training_rows(dataset, train_rows, val_rows)
    if len(train_rows) < 2 * dist.world:
        raise UsageError(f"{dataset.root}: {len(train_rows)} train images are too few for {dist.world} processes")
    if settings.weights and not Path(settings.weights).is_file():
        raise UsageError(f"--weights {settings.weights}: no such file")
    resolve_amp(settings.amp, device)
    create_policy(settings.augment, channels=dataset.channels)  # an unknown policy fails here, not mid-run
    if settings.freeze_backbone and not settings.weights:
        notes.append("--freeze-backbone without --weights: only a head is trained, on random features")
    data = load_training_data(dataset, train_rows, val_rows, device, notes)
    # Build once before anything is written: bad --classifier-arg/--weights fail here, not mid-run.
    probe, _ = build_classifier(entry, data, settings)
    model_size = describe(probe)
    del probe
    counts = torch.bincount(data.train.labels.cpu(), minlength=len(data.classes)).tolist()
    train_counts = dict(zip(data.classes, counts))  # evaluate's train_support

    # Only rank 0 writes; the other ranks train alongside it.
    output = OutputFolder(out, inputs=[dataset_path, settings.weights], overwrite=overwrite) if dist.is_main else None
    with (output or nullcontext()) as folder:
        runs = []
        for repeat in range(1, repeats + 1):
            run_seed = repeat_seed(seed, repeat)
            seed_everything(run_seed)
            module, args = build_classifier(entry, data, settings)
            started = time.perf_counter()
            with start_task(progress, f"{entry.name} run {repeat}/{repeats}", total=settings.epochs, unit="epoch") as task:
                history, best_epoch = fit(module, data, settings, seed=run_seed, device=device,
                                          head=entry.info.head, dist=dist, advance=task)
            best = history[best_epoch - 1]
            summary = {
                "repeat": repeat,
                "seed": run_seed,
                "epochs_run": len(history),
                "steps": history[-1]["steps"],
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
                        "steps": history[-1]["steps"],
                        "dataset": str(Path(dataset_path).resolve()),
                        "train_images": len(data.train),
                        "train_counts": train_counts,
                        "val_images": len(data.val),
                        "processes": dist.world,
                        "notes": data.notes,
                    },
                }
                save_checkpoint(target, module, config)
                write_history(target, history)
                if curves:
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
                plot_run_curves(folder.tmp, [folder.tmp / f"run-{r:02d}" for r in range(1, repeats + 1)],
                                f"{entry.name} on {Path(dataset_path).name}")
                with open(folder.tmp / "runs.csv", "w", newline="", encoding="utf-8") as handle:
                    columns = ["repeat", "seed", "epochs_run", "steps", "best_epoch", "val_loss", "val_accuracy", "seconds"]
                    writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
                    writer.writeheader()
                    writer.writerows(runs)
    return result

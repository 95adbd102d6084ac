"""`synthmed train`: N repeats of a classifier into a RUN folder, under torchrun when launched so."""

from __future__ import annotations

import csv
import os
from dataclasses import asdict
from pathlib import Path
from contextlib import nullcontext
from typing import Any

import torch

from synthmed.checkpoint import CONFIG, model_folders, read_config, save_checkpoint
from synthmed.data import check_leakage, Dataset, OutputFolder, partial_path, refuse_output_over_inputs, RunOptions
from synthmed.data.resume import resolved
from synthmed.devices import take_shard
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


def run_options(settings: TrainSettings, *, repeats: int, seed: int, shard: tuple[int, int], dist: Distributed) -> RunOptions:
    """The options that determine a RUN (what `--resume` checks), by their command-line names."""
    names = {"classifier_args": "--classifier-arg"}
    options = {names.get(key, "--" + key.replace("_", "-")): value for key, value in asdict(settings).items()}
    options["--weights"] = resolved(settings.weights)
    options.update({"--repeats": repeats, "--seed": seed, "--shard": f"{shard[0] + 1}/{shard[1]}",
                    "torchrun --nproc_per_node": dist.world})
    return RunOptions("train", options)


def train_run(
    dataset_path: Path,
    out: Path,
    settings: TrainSettings,
    *,
    repeats: int = 1,
    seed: int = 0,
    device: torch.device,
    overwrite: bool = False,
    resume: bool = False,
    shard: tuple[int, int] = (0, 1),
    dist: Distributed = Distributed(),
    progress: Progress = no_progress,
    curves: bool = True,
) -> dict[str, Any]:
    """Train `repeats` classifiers on a dataset into RUN (one model folder, or run-01/...).

    Everything the user can get wrong is checked before the output folder is created. Each
    repeat is one task, advanced per epoch with its val loss and accuracy. With `shard` (K, N)
    only every N-th repeat is trained (into run-XX/ with the global numbers; `evaluate` takes
    the shards' RUNs together). The output is resumable: `resume` continues after the last
    finished repeat, and a repeat from its last finished epoch. `curves=False` skips curves.png
    (a caller that keeps only the numbers, such as a study)."""
    check_settings(settings, repeats=repeats)
    out = Path(out)
    refuse_output_over_inputs(out, [dataset_path, settings.weights])
    mine = take_shard(list(range(1, repeats + 1)), shard)
    if not mine:
        raise UsageError(f"--shard {shard[0] + 1}/{shard[1]}: gets none of the {repeats} repeat(s); "
                         f"use at most {repeats} shards")
    # Checked on every rank (OutputFolder repeats it on rank 0), so no rank is left waiting.
    if out.exists() and not overwrite and not resume:
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
    dataset.check_images([*train_rows, *val_rows])
    data = load_training_data(dataset, train_rows, val_rows, device, notes)
    # Build once before anything is written: bad --classifier-arg/--weights fail here, not mid-run.
    probe, _ = build_classifier(entry, data, settings)
    model_size = describe(probe)
    del probe
    counts = torch.bincount(data.train.labels.cpu(), minlength=len(data.classes)).tolist()
    train_counts = dict(zip(data.classes, counts))  # evaluate's train_support

    options = run_options(settings, repeats=repeats, seed=seed, shard=shard, dist=dist)
    layout_root = repeats == 1 and shard[1] == 1  # a single model folder, not run-01/
    # Only rank 0 writes; the other ranks train alongside it (and read its epoch checkpoints).
    output = OutputFolder(out, inputs=[dataset_path, settings.weights], overwrite=overwrite, resume=resume,
                          resumable=True, options=options) if dist.is_main else None
    if output is not None and output.finished:
        return finished_summary(out, entry.name, model_size)
    tmp = partial_path(out)
    with (output or nullcontext()) as folder:
        runs = []
        for repeat in mine:
            run_seed = repeat_seed(seed, repeat)
            done = tmp / f"run-{repeat:02d}"
            if resume and layout_root and lift_single_repeat(tmp):
                runs.append(repeat_summary(tmp, repeat))  # killed while (or after) moving it up
                continue
            if resume and (done / CONFIG).is_file():
                runs.append(repeat_summary(done, repeat))
                continue
            work = tmp / f".run-{repeat:02d}.partial"
            seed_everything(run_seed)
            module, args = build_classifier(entry, data, settings)
            with start_task(progress, f"{entry.name} run {repeat}/{repeats}", total=settings.epochs, unit="epoch") as task:
                history, best_epoch = fit(module, data, settings, seed=run_seed, device=device, head=entry.info.head,
                                          dist=dist, advance=task, state_dir=work if resume or folder else None)
            best = history[best_epoch - 1]
            if folder is not None:
                config = {
                    "kind": "classifier", "name": entry.name, "plugin": entry.plugin, "version": entry.version,
                    "args": args, "classes": data.classes, "image_size": list(data.image_size),
                    "channels": data.channels, "normalization": data.normalization,
                    "training": {
                        **asdict(settings), "seed": run_seed, "run_seed": seed, "repeat": repeat, "repeats": repeats,
                        "shard": f"{shard[0] + 1}/{shard[1]}", "epochs_run": len(history), "best_epoch": best_epoch,
                        "steps": history[-1]["steps"],
                        "best_val_loss": best["val_loss"], "best_val_accuracy": best["val_accuracy"],
                        "dataset": str(Path(dataset_path).resolve()), "train_images": len(data.train),
                        "train_counts": train_counts,
                        "val_images": len(data.val), "processes": dist.world, "notes": data.notes,
                    },
                }
                write_repeat(work, done, module, config, history, best_epoch,
                             f"{entry.name} on {Path(dataset_path).name} (repeat {repeat})" if curves else None)
            runs.append({"repeat": repeat, "seed": run_seed, "epochs_run": len(history),
                         "steps": history[-1]["steps"], "best_epoch": best_epoch,
                         "val_loss": best["val_loss"], "val_accuracy": best["val_accuracy"],
                         "seconds": round(sum(r["seconds"] for r in history), 3)})
        result = {"model": entry.name, "repeats": repeats, "shard": f"{shard[0] + 1}/{shard[1]}",
                  "train_images": len(data.train), "val_images": len(data.val), **model_size, "notes": data.notes,
                  "runs": runs}
        if folder is not None:
            folder.write_provenance("train", [Path(dataset_path)], settings=asdict(settings), seed=seed,
                                    repeats=repeats, shard=result["shard"], processes=dist.world)
            if layout_root:
                lift_single_repeat(tmp)
            else:
                write_runs_csv(tmp / "runs.csv", runs)
                if curves and len(runs) > 1:
                    plot_run_curves(tmp, [tmp / f"run-{summary['repeat']:02d}" for summary in runs],
                                    f"{entry.name} on {Path(dataset_path).name}")
    for summary in runs:
        summary["folder"] = str(out if layout_root else out / f"run-{summary['repeat']:02d}")
    return result


def write_repeat(work: Path, done: Path, module: torch.nn.Module, config: dict[str, Any],
                 history: list[dict[str, float]], best_epoch: int, title: str | None) -> None:
    """A finished repeat: its model folder, history and curves (titled `title`; none when None)
    written in `work`, which then becomes `done` in one rename (so --resume sees a repeat whole
    or not at all)."""
    from synthmed.fit_state import STATE_FILE

    save_checkpoint(work, module, config)
    write_history(work, history)
    if title is not None:
        plot_curves(work, history, best_epoch, title)
    (work / STATE_FILE).unlink(missing_ok=True)
    os.replace(work, done)


def lift_single_repeat(tmp: Path) -> bool:
    """Move the finished run-01/ up into `tmp` (a single-repeat RUN is one model folder);
    True when `tmp` then holds the finished repeat. config.json moves last and a second call
    finishes what a killed first one started, so `--resume` after a kill at any point here
    gets the same folder."""
    single = tmp / "run-01"
    if single.is_dir():
        for item in sorted(single.iterdir(), key=lambda item: item.name == CONFIG):
            os.replace(item, tmp / item.name)
        single.rmdir()
    return (tmp / CONFIG).is_file()


def repeat_summary(folder: Path, repeat: int) -> dict[str, Any]:
    """One row of runs.csv, read from a finished repeat's config.json and history.csv."""
    training = read_config(folder, kind="classifier")["training"]
    with open(folder / "history.csv", newline="", encoding="utf-8") as handle:
        seconds = sum(float(row["seconds"]) for row in csv.DictReader(handle))
    return {"repeat": repeat, "seed": training["seed"], "epochs_run": training["epochs_run"],
            "steps": training.get("steps"),
            "best_epoch": training["best_epoch"], "val_loss": training["best_val_loss"],
            "val_accuracy": training["best_val_accuracy"], "seconds": round(seconds, 3)}


RUNS_COLUMNS = ["repeat", "seed", "epochs_run", "steps", "best_epoch", "val_loss", "val_accuracy", "seconds"]


def write_runs_csv(path: Path, runs: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=RUNS_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(runs)


def finished_summary(out: Path, name: str, model_size: dict[str, Any]) -> dict[str, Any]:
    """`--resume` of a RUN that is already complete: its summary, read back."""
    folders = model_folders(out)
    training = [read_config(folder, kind="classifier")["training"] for folder in folders]
    runs = [{**repeat_summary(folder, t["repeat"]), "folder": str(folder)} for folder, t in zip(folders, training)]
    return {"model": name, "repeats": training[0].get("repeats", len(runs)), "shard": training[0].get("shard", "1/1"),
            "train_images": training[0]["train_images"], "val_images": training[0]["val_images"], **model_size,
            "notes": training[0]["notes"], "runs": runs, "already_complete": True}

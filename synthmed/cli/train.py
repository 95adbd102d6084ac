"""`synthmed train DATASET -o RUN --model NAME`: train a classifier (N times with --repeats)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from synthmed.cli.options import DatasetArg, Device, Json, Output, Overwrite, Quiet, Seed
from synthmed.parsing import parse_key_values
from synthmed.cli.output import emit, progress, show
from synthmed.errors import UsageError


def train(
    dataset: DatasetArg,
    output: Output,
    model: Annotated[str, typer.Option("--model", "-m", help="Classifier name (see `synthmed plugins`).")] = "cnn-basic",
    epochs: Annotated[int, typer.Option("--epochs", help="Most epochs per run (early stopping may end sooner).")] = 20,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per optimiser step.")] = 32,
    lr: Annotated[float, typer.Option("--lr", help="Adam learning rate.")] = 1e-3,
    weight_decay: Annotated[float, typer.Option("--weight-decay", help="Adam weight decay.")] = 0.0,
    patience: Annotated[int, typer.Option("--patience", help="Stop after this many epochs without a lower val loss.")] = 2,
    max_steps: Annotated[Optional[int], typer.Option(
        "--max-steps", help="Stop after this many optimizer steps (with --epochs and early stopping, whichever comes first).")] = None,
    class_weights: Annotated[bool, typer.Option("--class-weights", help="Weight the loss by inverse class frequency.")] = False,
    augment: Annotated[str, typer.Option("--augment", help="Augmentation policy applied on the fly to train batches.")] = "none",
    repeats: Annotated[int, typer.Option("--repeats", help="Train N times with distinct seeds into RUN/run-01/...")] = 1,
    val_fraction: Annotated[Optional[float], typer.Option(
        "--val-fraction", help="Carve a val split of this fraction of train subjects when the dataset has none.")] = None,
    weights: Annotated[Optional[Path], typer.Option(
        "--weights", help="Local pretrained weights (.safetensors, or a torchvision .pth).")] = None,
    freeze_backbone: Annotated[bool, typer.Option("--freeze-backbone", help="Train only a new classification head.")] = False,
    model_arg: Annotated[list[str], typer.Option(
        "--model-arg", help="KEY=VALUE passed to the classifier builder (repeatable).")] = [],  # noqa: B006 - typer
    amp: Annotated[str, typer.Option("--amp", help="Mixed precision on CUDA: auto, bf16, fp16 or off.")] = "auto",
    seed: Seed = 0,
    device: Device = "auto",
    overwrite: Overwrite = False,
    json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Train a classifier on the train split, early-stopped on the val split; keeps the best epoch.

    Writes model.safetensors + config.json, history.csv and curves.png (per repeat with --repeats).
    Under `torchrun --nproc_per_node N -m synthmed train ...` it trains with DistributedDataParallel."""
    import torch

    from synthmed.devices import resolve_device
    from synthmed.train.settings import TrainSettings
    from synthmed.train.run import distributed_from_env, init_distributed, train_run

    settings = TrainSettings(
        model=model, model_args=parse_key_values(model_arg, "--model-arg", "dropout=0.3"), epochs=epochs, batch_size=batch_size, lr=lr,
        weight_decay=weight_decay, patience=patience, class_weights=class_weights, augment=augment,
        weights=str(weights) if weights else None, freeze_backbone=freeze_backbone, amp=amp,
        val_fraction=val_fraction, max_steps=max_steps,
    )
    dist = distributed_from_env()
    target = resolve_device(device)
    if dist.world > 1 and target.type == "cuda":
        target = torch.device(f"cuda:{dist.local_rank}")
        torch.cuda.set_device(target)
    init_distributed(dist, target)
    quiet = quiet or not dist.is_main
    completed = False
    try:
        with progress(quiet=quiet) as bar:
            tasks: dict[int, int] = {}

            def finish(repeat: int) -> None:
                # Early stopping ends a run before --epochs: show it as complete.
                if repeat in tasks:
                    done = bar.tasks[tasks[repeat]].completed
                    bar.update(tasks[repeat], total=done, completed=done)

            def on_start(repeat: int, total: int) -> None:
                finish(repeat - 1)
                tasks[repeat] = bar.add_task(f"{model} run {repeat}/{repeats}", total=total, unit="epoch")

            def on_epoch(repeat: int, record: dict) -> None:
                status = f"val loss {record['val_loss']:.3f} acc {record['val_accuracy']:.3f}"
                bar.update(tasks[repeat], advance=1, status=status)

            summary = train_run(
                dataset, output, settings, repeats=repeats, seed=seed, device=target, overwrite=overwrite,
                dist=dist, on_start=on_start, on_epoch=on_epoch,
            )
            finish(repeats)
        completed = True
    finally:
        if dist.world > 1 and torch.distributed.is_initialized():
            if completed:
                # Let every rank finish (rank 0 still writes the run) before gloo is torn down:
                # a rank that destroys the group while its peer is busy can abort at exit.
                torch.distributed.barrier()
            torch.distributed.destroy_process_group()
    if not dist.is_main:
        return
    for note in summary["notes"]:
        show(f"[dim]{note}[/dim]", quiet=quiet)
    emit(output, summary, as_json=json)

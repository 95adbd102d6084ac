"""`synthmed train DATASET -o RUN --classifier NAME`: train a classifier (N times with --repeats)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from synthmed.cli.options import (
    BatchSize,
    DatasetArg,
    Device,
    Json,
    LearningRate,
    Output,
    Overwrite,
    Quiet,
    Seed,
    ValFraction,
    old_spelling,
    renamed,
)
from synthmed.parsing import parse_key_values
from synthmed.cli.output import emit, progress, show


def train(
    ctx: typer.Context,
    dataset: DatasetArg,
    output: Output,
    classifier: Annotated[str, typer.Option("--classifier", "-c", help="Classifier name (see `synthmed plugins`).")] = "cnn-basic",
    epochs: Annotated[int, typer.Option("--epochs", help="Most epochs per run (early stopping may end sooner).")] = 20,
    batch_size: BatchSize = 32,
    lr: LearningRate = 1e-3,
    weight_decay: Annotated[float, typer.Option("--weight-decay", help="Adam weight decay.")] = 0.0,
    patience: Annotated[int, typer.Option("--patience", help="Stop after this many epochs without a lower val loss.")] = 2,
    max_steps: Annotated[Optional[int], typer.Option(
        "--max-steps", help="Stop after this many optimizer steps (with --epochs and early stopping, whichever comes first).")] = None,
    class_weights: Annotated[bool, typer.Option("--class-weights", help="Weight the loss by inverse class frequency.")] = False,
    augment: Annotated[str, typer.Option("--augment", help="Augmentation policy applied on the fly to train batches.")] = "none",
    repeats: Annotated[int, typer.Option("--repeats", help="Train N times with distinct seeds into RUN/run-01/...")] = 1,
    val_fraction: ValFraction = None,
    weights: Annotated[Optional[Path], typer.Option(
        "--weights", help="Local pretrained weights (.safetensors, or a torchvision .pth).")] = None,
    freeze_backbone: Annotated[bool, typer.Option("--freeze-backbone", help="Train only a new classification head.")] = False,
    classifier_arg: Annotated[list[str], typer.Option(
        "--classifier-arg", help="KEY=VALUE passed to the classifier builder (repeatable).")] = [],  # noqa: B006 - typer
    amp: Annotated[str, typer.Option("--amp", help="Mixed precision on CUDA: auto, bf16, fp16 or off.")] = "auto",
    seed: Seed = 0,
    device: Device = "auto",
    overwrite: Overwrite = False,
    json: Json = False,
    quiet: Quiet = False,
    old_model: Annotated[Optional[str], old_spelling("--model", "-m", new="--classifier")] = None,
    old_model_arg: Annotated[Optional[list[str]], old_spelling("--model-arg", new="--classifier-arg")] = None,
) -> None:
    """Train a classifier on the train split, early-stopped on the val split; keeps the best epoch.

    Writes model.safetensors + config.json, history.csv and curves.png (per repeat with --repeats).
    Under `torchrun --nproc_per_node N -m synthmed train ...` it trains with DistributedDataParallel."""
    import torch

    from synthmed.devices import resolve_device
    from synthmed.train.settings import TrainSettings
    from synthmed.train.run import distributed_from_env, init_distributed, train_run

    classifier = renamed(ctx, classifier, old_model, new="--classifier NAME", old="--model",
                         old_meaning=lambda name: not Path(name).is_dir())
    classifier_arg = renamed(ctx, classifier_arg, old_model_arg, new="--classifier-arg", old="--model-arg")
    settings = TrainSettings(
        classifier=classifier, classifier_args=parse_key_values(classifier_arg, "--classifier-arg", "dropout=0.3"),
        epochs=epochs, batch_size=batch_size, lr=lr,
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
        with progress(quiet=quiet) as display:
            summary = train_run(
                dataset, output, settings, repeats=repeats, seed=seed, device=target, overwrite=overwrite,
                dist=dist, progress=display,
            )
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

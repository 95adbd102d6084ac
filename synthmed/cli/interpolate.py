"""`synthmed interpolate DATASET -o OUT --autoencoder NAME`: new labelled images decoded
from weighted mixtures of the latent codes of 2..n real images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from synthmed.cli.options import (
    BatchSize,
    Classes,
    DatasetArg,
    Device,
    FitEpochs,
    Json,
    LearningRate,
    ModelDir,
    Output,
    Overwrite,
    PerClass,
    Quiet,
    Ratio,
    Resume,
    Seed,
    Shard,
    old_spelling,
    renamed,
)
from synthmed.parsing import comma_list, parse_key_values
from synthmed.cli.output import emit, progress, show


def interpolate(
    ctx: typer.Context,
    dataset: DatasetArg,
    output: Output,
    autoencoder: Annotated[
        Optional[str], typer.Option("--autoencoder", help="Registered autoencoder: cnn-ae, unet-ae, vae, acai, ... (default cnn-ae).")
    ] = None,
    autoencoder_arg: Annotated[
        Optional[list[str]],
        typer.Option("-a", "--autoencoder-arg", help="KEY=VALUE for the autoencoder, e.g. width=32, width_mult=1.5, base_width=64."),
    ] = None,
    model: ModelDir = None,
    fit_epochs: FitEpochs = None,
    loss: Annotated[str, typer.Option("--loss", help="Fitting loss: mse or bce.")] = "mse",
    batch_size: BatchSize = 32,
    lr: LearningRate = None,
    n: Annotated[int, typer.Option("--n", help="Images mixed per interpolant (2..k).")] = 2,
    within_class: Annotated[
        bool,
        typer.Option("--within-class/--across-classes", help="Parents from one class, or across classes with a soft label."),
    ] = True,
    alphas: Annotated[
        Optional[str], typer.Option("--alphas", help="For --n 2: weights of the second parent, e.g. 0.25,0.5,0.75 (the default).")
    ] = None,
    mix_weights: Annotated[
        Optional[list[str]], typer.Option("--mix-weights", help="An explicit weight vector W1,...,Wn on the simplex (repeatable).")
    ] = None,
    concentration: Annotated[
        Optional[float], typer.Option("--concentration", help="Dirichlet concentration for random weights (default for --n > 2: 1.0).")
    ] = None,
    per_class: PerClass = None,
    ratio: Ratio = None,
    classes: Classes = None,
    near_copy_ssim: Annotated[float, typer.Option("--near-copy-ssim", help="SSIM to the nearest train image at which an interpolant counts as a near-copy.")] = 0.95,
    lpips_weights: Annotated[
        Optional[Path], typer.Option("--lpips-weights", help="Local torchvision AlexNet/VGG-16/SqueezeNet weights file for LPIPS.")
    ] = None,
    seed: Seed = 0,
    device: Device = "auto",
    shard: Shard = None,
    overwrite: Overwrite = False,
    resume: Resume = False,
    json: Json = False,
    quiet: Quiet = False,
    old_weights: Annotated[Optional[list[str]], old_spelling("--weights", new="--mix-weights")] = None,
) -> None:
    """Interpolate in an autoencoder's latent space: within a class (labelled) or across classes (soft label).

    Fits the autoencoder on the train split (--fit-epochs, default 20) or loads --model.
    OUT holds the interpolants (train split, source=synthetic), model/, quality.json and figures/.
    """
    from synthmed.interpolate.job import InterpolationSettings, execute, prepare

    mix_weights = renamed(ctx, mix_weights, old_weights, new="--mix-weights", old="--weights")
    settings = InterpolationSettings(
        dataset=dataset,
        out=output,
        autoencoder=autoencoder,
        autoencoder_args=parse_key_values(autoencoder_arg, "-a/--autoencoder-arg"),
        model_dir=model,
        fit_epochs=fit_epochs,
        loss=loss,
        batch_size=batch_size,
        lr=lr,
        n=n,
        within_class=within_class,
        alphas=alphas,
        mix_weights=list(mix_weights or []),
        concentration=concentration,
        per_class=per_class,
        ratio=ratio,
        classes=comma_list(classes),
        near_copy_ssim=near_copy_ssim,
        lpips_weights=lpips_weights,
        seed=seed,
        device=device,
        shard=shard,
        overwrite=overwrite,
        resume=resume,
    )
    job = prepare(settings)
    with progress(quiet=quiet) as display:
        summary = execute(job, progress=display)
    show(_quality_table(summary["quality"]), quiet=quiet)
    emit(output, summary if json else None, as_json=json)


def _quality_table(quality: dict):
    from rich.table import Table

    def fmt(value, digits: int = 4) -> str:
        if value is None:
            return "unavailable"
        if isinstance(value, dict):
            return "unavailable" if value["median"] is None else f"{value['median']:.{digits}f} (median)"
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    recon, made = quality["reconstruction_val"], quality["overall"]
    table = Table(title=f"interpolation quality ({quality['autoencoder']})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row(f"reconstruction PSNR (val, {recon['images']} img)", fmt(recon["psnr"], 2))
    table.add_row("reconstruction SSIM (val)", fmt(recon["ssim"]))
    table.add_row("reconstruction MSE (val)", fmt(recon["mse"], 5))
    table.add_row("reconstruction LPIPS (val)", fmt(recon["lpips"]) if recon["lpips"] is not None else quality["lpips"])
    table.add_row(f"novelty, pixel RMS to nearest train ({made['synthetic']} img)", fmt(made.get("nearest_real")))
    table.add_row("  reference: val images", fmt(made.get("val_nearest_real")))
    table.add_row("novelty, encoder features", fmt(made.get("nearest_real_features")))
    table.add_row("  reference: val images", fmt(made.get("val_nearest_real_features")))
    table.add_row("SSIM to parents (mean over parents)", fmt(made.get("ssim_to_parents_mean")))
    table.add_row("SSIM to closest parent", fmt(made.get("ssim_to_parents_max")))
    table.add_row(f"near-copies (SSIM >= {quality['near_copy_ssim']})",
                  f"{made['near_copies']} ({100 * (made['near_copy_share'] or 0):.1f}%)")
    return table

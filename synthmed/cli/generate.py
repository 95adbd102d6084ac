"""`synthmed generate DATASET -o OUT --generator NAME`: make synthetic images per class."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from synthmed.cli.options import (
    Balance,
    BatchSize,
    Classes,
    DatasetArg,
    Device,
    DryRun,
    FitEpochs,
    Json,
    ModelDir,
    Output,
    Overwrite,
    PerClass,
    Quiet,
    Ratio,
    Resume,
    Seed,
    Shard,
    Splits,
)
from synthmed.parsing import comma_list, parse_key_values
from synthmed.cli.output import emit, progress, show


def _quality_table(report: dict):
    from rich.table import Table

    def fmt(value, digits=2):
        return "-" if value is None else f"{value:.{digits}f}"

    space = (report.get("features") or {}).get("space") or "none"
    table = Table(title=f"quality (features: {space})", box=None, padding=(0, 0, 0, 1), pad_edge=False,
                  show_edge=False)
    # n: synthetic/real images the measures rest on; P R D C: precision, recall, density,
    # coverage; copies: near copies in pixels or features (quality.json has KID and diversity too)
    for column in ("class", "n", "judge", "FID", "P", "R", "D", "C", "copies", "verdict"):
        table.add_column(column, justify="left" if column in ("class", "verdict") else "right", no_wrap=True)
    for label, stats in [*report["classes"].items(), ("overall", report["overall"])]:
        features = stats.get("features") or {}
        n = f"{stats['synthetic']}/{features['images']['real']}" if features else str(stats["synthetic"])
        table.add_row(label, n, fmt(stats["label_fidelity"]), fmt(features.get("fid"), 1),
                      *(fmt(features.get(key)) for key in ("precision", "recall", "density", "coverage")),
                      str((stats.get("copies") or {}).get("either", stats["near_copies"])), stats.get("verdict") or "")
    return table


def show_quality(report: dict, *, quiet: bool) -> None:
    """The quality table, then one warning line per problem (warnings show even with --quiet)."""
    show(_quality_table(report), quiet=quiet)
    for line in report.get("warnings", []):
        sys.stderr.write(f"synthmed: warning: {line}\n")


def generate(
    dataset: DatasetArg,
    output: Output,
    generator: Annotated[str, typer.Option("--generator", help="Generator name (see `synthmed plugins`): ddpm, acgan, dcgan, ...")],
    generator_arg: Annotated[Optional[list[str]], typer.Option("-g", "--generator-arg", help="KEY=VALUE for the generator (JSON values; repeatable), e.g. -g preset=tiny.")] = None,
    classes: Classes = None,
    per_class: PerClass = None,
    ratio: Ratio = None,
    balance: Balance = False,
    model: ModelDir = None,
    fit_only: Annotated[bool, typer.Option("--fit-only", help="Fit and save OUT/model/ without sampling.")] = False,
    fit_epochs: FitEpochs = None,
    fit_minutes: Annotated[Optional[float], typer.Option("--fit-minutes", help="Fit for about M minutes instead of a number of epochs (stops after the last epoch that ends in time).")] = None,
    select_by: Annotated[Optional[str], typer.Option("--select-by", help="Keep the fit's best checkpoint by this score (fid: feature-space FID of fixed-seed samples against the real val images) and stop when it stops improving.")] = None,
    check_every: Annotated[Optional[int], typer.Option("--check-every", help="With --select-by: score every E epochs (default: a tenth of --fit-epochs, 5 with --fit-minutes).")] = None,
    patience: Annotated[Optional[int], typer.Option("--patience", help="With --select-by: stop after P checks without a better score (default 3).")] = None,
    steps: Annotated[Optional[int], typer.Option("--steps", help="Sampling steps (ddpm, default 20; same as -g steps=N).")] = None,
    guidance: Annotated[Optional[float], typer.Option("--guidance", help="Classifier-free guidance scale (ddpm, default 2.0; 1 = none).")] = None,
    batch_size: BatchSize = 64,
    judge: Annotated[Optional[Path], typer.Option("--judge", help="Classifier RUN from `synthmed train` for label fidelity.")] = None,
    copy_threshold: Annotated[float, typer.Option("--copy-threshold", help="RMS distance under which a synthetic image counts as a near copy of a real one.")] = 0.02,
    strict_quality: Annotated[bool, typer.Option("--strict-quality", help="Fail (exit 1, nothing written) when a class's quality verdict is not ok.")] = False,
    per_image: Annotated[Optional[int], typer.Option("--per-image", help="Image-conditional generators: K variations of each source image.")] = None,
    splits: Splits = ["train"],  # noqa: B006 - typer; image-conditional generators: the sources
    concurrency: Annotated[int, typer.Option("--concurrency", help="Image-conditional generators: requests in flight.")] = 1,
    max_requests: Annotated[Optional[int], typer.Option("--max-requests", help="Image-conditional generators: at most M requests this run (--resume continues).")] = None,
    allow_upload: Annotated[bool, typer.Option("--allow-upload", help="Allow sending source images to a hosted API (also SYNTHMED_ALLOW_UPLOAD=1).")] = False,
    dry_run: DryRun = False,
    seed: Seed = 0,
    device: Device = "auto",
    shard: Shard = None,
    overwrite: Overwrite = False,
    resume: Resume = False,
    json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Fit a generator on the real train images and sample synthetic ones per class (OUT/model/, OUT/quality.json)."""
    from synthmed.data import Dataset, written_ids
    from synthmed.devices import parse_shard
    from synthmed.generate import job, sampling
    from synthmed.generate import plan as options
    from synthmed.errors import UsageError

    shard_index = parse_shard(shard)
    data = Dataset.open(dataset)
    entry = options.generator_entry(generator)
    args = parse_key_values(generator_arg, "-g/--generator-arg", "steps=50")
    for name, value in (("steps", steps), ("guidance", guidance)):
        if value is not None:
            args[name] = value
    options.check_count_options(per_class, ratio, balance, per_image)
    chosen = options.resolve_classes(data, classes)
    counts_given = per_class is not None or ratio is not None or balance

    if entry.info.conditioning == "image":
        job.refuse_fit_options(model=model, fit_only=fit_only, fit_epochs=fit_epochs, fit_minutes=fit_minutes,
                               select_by=select_by)
        request = job.VariationRequest(
            dataset=data, entry=entry, out=output, args=args, classes=chosen if classes else None,
            counts=options.plan_counts(data, chosen, per_class=per_class, ratio=ratio, balance=balance) if counts_given else None,
            per_image=per_image, splits=tuple(comma_list(splits) or ()), seed=seed, device_spec=device,
            shard=shard_index, concurrency=concurrency, max_requests=max_requests, allow_upload=allow_upload,
            dry_run=dry_run, judge=judge, copy_threshold=copy_threshold, strict_quality=strict_quality, overwrite=overwrite, resume=resume)
        with progress(quiet=quiet) as display:
            summary = job.run_variation_generation(request, progress=display)
        if dry_run:
            _print_dry_run(summary, json)
            return
        if not summary["complete"]:
            show(f"stopped at --max-requests: {summary['left']} variation(s) left; rerun with --resume to add them",
                 quiet=quiet)
        if "quality" in summary:
            show_quality(summary["quality"], quiet=quiet)
        emit(output, summary, as_json=json)
        return

    if per_image is not None or comma_list(splits) != ["train"] or concurrency != 1 or max_requests is not None or allow_upload:
        raise UsageError(f"--per-image, --splits, --concurrency, --max-requests and --allow-upload are for "
                             f"image-conditional generators; {generator!r} is class-conditional")
    counts = options.plan_counts(data, chosen, per_class=per_class, ratio=ratio, balance=balance) if counts_given else {}
    request = job.ClassRequest(
        dataset=data, entry=entry, out=output, args=args, classes=chosen, counts=counts, seed=seed, device_spec=device,
        shard=shard_index, model=model, fit_only=fit_only, fit_epochs=fit_epochs, fit_minutes=fit_minutes, batch_size=batch_size, judge=judge,
        copy_threshold=copy_threshold, strict_quality=strict_quality, overwrite=overwrite, resume=resume,
        select_by=select_by, check_every=check_every, patience=patience)
    if dry_run:
        from synthmed.devices import resolve_device

        loaded, _, rows = job.validate_class_request(request)
        done = written_ids(output) if resume else set()
        plan = sampling.plan_sampling(counts, generator_name=entry.name, seed=seed, shard=shard_index,
                                 done=done.__contains__)
        target = resolve_device(device)
        estimate = job.estimate_class_request(request, loaded, rows, target)
        _print_dry_run({"dry_run": True, "fit": model is None, "planned": plan.total,
                        "already_done": plan.already_done,
                        "counts": {label: len(v) for label, v in plan.todo.items()},
                        "estimate_seconds": estimate}, json)
        if estimate is not None:
            _show_estimate(estimate, target)
        return
    with progress(quiet=quiet) as display:
        summary = job.run_class_generation(request, progress=display, on_estimate=lambda e, d: _show_estimate(e, d, quiet=quiet))
    if "selection" in summary:
        _show_selection(summary["selection"], quiet=quiet)
    if "quality" in summary:
        show_quality(summary["quality"], quiet=quiet)
    emit(output, summary, as_json=json)


def _show_selection(selection: dict, *, quiet: bool) -> None:
    for line in selection.get("warnings", []):
        sys.stderr.write(f"synthmed: warning: {line}\n")
    if "kept_epoch" in selection:
        fid = selection["fid"]
        show(f"kept epoch {selection['kept_epoch']} of {selection['epochs']} "
             f"({selection['select_by']} {'-' if fid is None else f'{fid:.2f}'}, {selection['checks']} check(s); "
             "model/history.csv)", quiet=quiet)


def _show_estimate(estimate: dict, device, *, quiet: bool = False) -> None:
    from synthmed.generate.estimate import describe

    line, warning = describe(estimate, device)
    if not quiet:
        sys.stderr.write(line + "\n")
    if warning:
        sys.stderr.write(f"synthmed: warning: {warning}\n")


def _print_dry_run(summary: dict, as_json: bool) -> None:
    if as_json:
        emit(None, summary, as_json=True)
        return
    if "would_request" in summary:
        line = (f"would request {summary['would_request']} variation(s): {summary['planned']} planned, "
                f"{summary['already_done']} already done")
    else:
        fit = "fit, then " if summary["fit"] else ""
        line = f"would {fit}make {summary['planned']} image(s): " + ", ".join(f"{k} {v}" for k, v in summary["counts"].items())
    sys.stdout.write(line + "\n")

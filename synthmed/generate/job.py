"""`synthmed generate` as library calls: a class-conditional run (`ClassRequest`) and an
image-conditional one (`VariationRequest`), each validated in full before any work, so the
Python API refuses exactly what the command line refuses."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from synthmed.data import Dataset, DatasetWriter, OutputFolder, Row, RunOptions
from synthmed.data.resume import resolved
from synthmed.errors import UsageError
from synthmed.generate.plan import (
    FIT_STATE_FOLDER,
    MODEL_FOLDER,
    find_model_folder,
    load_model,
    make_generator,
    save_model,
)
from synthmed.generate.report import Judge, load_judge, write_quality
from synthmed.generate.sampling import (
    fit_generator,
    fit_rows,
    plan_sampling,
    sample_into,
)
from synthmed.progress import Progress, no_progress
from synthmed.protocols import ChecksSize
from synthmed.registry import Entry, GeneratorInfo


@dataclass
class ClassRequest:
    """Everything `generate` needs for a class-conditional generator, validated up front."""

    dataset: Dataset
    entry: Entry[GeneratorInfo]
    out: Path
    args: dict[str, Any]
    classes: list[str]
    counts: dict[str, int]  # empty with fit_only
    seed: int
    device_spec: str
    shard: tuple[int, int] = (0, 1)
    model: Path | None = None
    fit_only: bool = False
    fit_epochs: int | None = None
    fit_minutes: float | None = None
    batch_size: int = 64
    judge: Path | None = None
    copy_threshold: float = 0.02
    strict_quality: bool = False
    overwrite: bool = False
    resume: bool = False
    select_by: str | None = None  # "fid": keep the best checkpoint of the fit (synthmed.generate.selection)
    check_every: int | None = None  # epochs between checks (default: a tenth of the fit, or 5 on a time budget)
    patience: int | None = None  # checks without improvement before the fit stops


def validate_class_request(request: ClassRequest) -> tuple[Any, Judge | None, list[Row] | None]:
    """All checks before any work: returns (loaded generator or None, judge, fit rows or None)."""
    dataset, entry = request.dataset, request.entry
    check_copy_threshold(request.copy_threshold)
    if request.fit_epochs is not None and request.fit_epochs < 1:
        raise UsageError("--fit-epochs must be at least 1")
    if request.fit_minutes is not None:
        if request.fit_epochs is not None:
            raise UsageError("--fit-minutes and --fit-epochs both set the length of a fit; use one of them")
        if request.fit_minutes <= 0:
            raise UsageError("--fit-minutes must be positive")
        if request.model is not None:
            raise UsageError("--fit-minutes sets the length of a fit, but --model skips fitting; drop one of them")
        if not getattr(make_generator(entry, request.args), "stops_on_time", False):
            raise UsageError(f"--fit-minutes: generator {entry.name!r} cannot stop a fit on time; use --fit-epochs")
    _check_selection(request)
    if request.fit_only and (any(request.counts.values()) or (request.judge is not None and request.select_by is None)):
        raise UsageError("--fit-only fits without sampling; drop --per-class/--ratio/--balance/--judge, or --fit-only")
    if not request.fit_only and not request.counts:
        raise UsageError("say how many images to make: --per-class N, --ratio R or --balance (or --fit-only)")
    if request.model is not None and request.fit_only:
        raise UsageError("--model samples from a fitted model and --fit-only only fits; use one of them")
    if request.model is not None and request.fit_epochs is not None:
        raise UsageError("--fit-epochs sets the length of a fit, but --model skips fitting; drop one of them")
    if request.shard[1] > 1 and request.model is None:
        raise UsageError("--shard needs --model DIR: fit once (--fit-only), then sample each shard from that model")
    if request.fit_only and request.shard[1] > 1:
        raise UsageError("--shard splits sampling; --fit-only does not sample")
    if request.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    if not request.fit_only and not any(request.counts.values()):
        raise UsageError(f"nothing to generate: the requested counts are 0 for {', '.join(request.classes)}")
    if not request.fit_only and plan_sampling(request.counts, generator_name=entry.name, seed=request.seed,
                                              shard=request.shard).total == 0:
        raise UsageError(f"nothing to generate in shard {request.shard[0] + 1}/{request.shard[1]}: "
                         f"it gets no images of {sum(request.counts.values())}")
    dataset.require_uniform_size()
    judge = load_judge(request.judge, dataset) if request.judge is not None else None
    if request.model is not None:
        generator, _ = load_model(entry, find_model_folder(request.model), dataset, request.classes, request.args)
        return generator, judge, None
    rows = fit_rows(dataset, request.classes, entry.info.min_images)
    probe = make_generator(entry, request.args)  # reject bad -g arguments before any work
    if isinstance(probe, ChecksSize):
        try:
            probe.check_size(dataset.require_uniform_size(), dataset.channels)
        except ValueError as exc:
            raise UsageError(f"--generator {entry.name}: {exc}; resize with `synthmed preprocess --size N`") from None
    return None, judge, rows


def _check_selection(request: ClassRequest) -> None:
    from synthmed.generate.selection import check_selection, val_rows

    check_selection(request.select_by, request.check_every, request.patience)
    if request.select_by is None:
        return
    if request.model is not None:
        raise UsageError("--select-by picks the best checkpoint of a fit, but --model skips fitting; drop one of them")
    if not getattr(make_generator(request.entry, request.args), "selects_checkpoint", False):
        raise UsageError(f"--select-by: generator {request.entry.name!r} cannot keep the best checkpoint of its fit")
    val_rows(request.dataset, request.classes)


def selection_pace(request: ClassRequest) -> tuple[int, int]:
    """(check every E epochs, patience P) with the defaults filled in: about ten checks over a
    fit of known length, every DEFAULT_CHECK_EVERY epochs on a time budget."""
    from synthmed.generate.selection import DEFAULT_CHECK_EVERY, DEFAULT_PATIENCE

    epochs = None if request.fit_minutes is not None else request.fit_epochs or request.entry.info.fit_epochs
    every = request.check_every or (max(1, round(epochs / 10)) if epochs else DEFAULT_CHECK_EVERY)
    return every, request.patience or DEFAULT_PATIENCE


def _rows_read(dataset: Dataset, rows: Sequence[Row], counts: dict[str, int], quality: bool) -> list[Row]:
    """The rows a run reads: those it fits on and, for the quality report, each generated
    class's real train images."""
    extra = dataset.select(split="train", source="real", labels=[k for k, v in counts.items() if v]) if quality else []
    return list({row["id"]: row for row in [*rows, *extra]}.values())


def check_copy_threshold(copy_threshold: float) -> None:
    if copy_threshold < 0:
        raise UsageError("--copy-threshold must be >= 0")


def estimate_class_request(request: ClassRequest, generator: Any, rows: Sequence[Row] | None, device: Any
                           ) -> dict[str, Any] | None:
    """Estimated seconds of fitting and sampling (synthmed.generate.estimate), or None when
    the generator cannot be timed; `generator` is the loaded model, or None before a fit."""
    from synthmed.generate.estimate import estimate_seconds

    fitting = generator is None and rows is not None
    probe = make_generator(request.entry, request.args) if fitting else generator
    epochs = request.fit_epochs or request.entry.info.fit_epochs
    estimate = estimate_seconds(probe, request.dataset, rows if fitting and request.fit_minutes is None else None,
                                epochs=epochs, images_to_sample=sum(request.counts.values()),
                                batch_size=request.batch_size, device=device, seed=request.seed,
                                check_images=_check_images(request, epochs) if fitting else 0)
    if estimate is not None and fitting and request.fit_minutes is not None:
        estimate["fit"] = request.fit_minutes * 60
        estimate["total"] += estimate["fit"]
    return estimate


def _check_images(request: ClassRequest, epochs: int) -> int:
    """The images `--select-by` checks sample over a fit of `epochs` if patience never stops it
    (on a time budget the checks share the minutes, so they add nothing)."""
    if request.select_by is None or request.fit_minutes is not None:
        return 0
    from synthmed.generate.selection import val_rows

    every, _ = selection_pace(request)
    checks = -(-epochs // every)  # every E epochs, and after the last
    return checks * sum(len(rows) for rows in val_rows(request.dataset, request.classes).values())


def _fit_or_reuse(request: ClassRequest, tmp: Path, rows: Sequence[Row], device: Any, progress: Progress,
                  on_estimate: Callable[[dict[str, Any], Any], None] | None = None, judge: Judge | None = None,
                  summary: dict[str, Any] | None = None) -> Any:
    """Fit into `tmp/model` (continuing a fit checkpoint on --resume), or load a fit finished
    earlier; with --select-by, `summary` gets the selection (kept epoch, its FID, warnings)."""
    entry, dataset = request.entry, request.dataset
    model_dir, state_dir = tmp / MODEL_FOLDER, tmp / FIT_STATE_FOLDER
    if request.resume and (model_dir / "config.json").is_file():
        shutil.rmtree(state_dir, ignore_errors=True)  # killed after the model was moved into place
        generator, _ = load_model(entry, model_dir, dataset, request.classes, request.args)
        return generator
    if on_estimate is not None:  # the fit's time only: sampling is estimated by --dry-run
        estimate = estimate_class_request(replace(request, counts={}), None, rows, device)
        if estimate is not None:
            on_estimate(estimate, device)
    generator = make_generator(entry, request.args)
    epochs = request.fit_epochs or entry.info.fit_epochs
    check = _fit_check(request, judge, device, summary if summary is not None else {})
    epochs = fit_generator(generator, dataset, rows, epochs=epochs, device=device, seed=request.seed,
                           state_dir=state_dir, progress=progress, minutes=request.fit_minutes, check=check)
    # The model folder is completed aside and moved into place in one rename: its config.json
    # is what --resume takes for a finished fit, and the weights come before the facts in it.
    scratch = tmp / f".{MODEL_FOLDER}.partial"
    shutil.rmtree(scratch, ignore_errors=True)
    save_model(generator, scratch, entry, dataset, request.classes, request.args, epochs)
    if getattr(generator, "fit_history", None) is not None:
        from synthmed.generate.selection import write_history

        write_history(scratch, generator.fit_history, check.scores if check else {}, generator.selected_epoch)
    shutil.rmtree(model_dir, ignore_errors=True)  # a model folder without config.json: unfinished
    os.replace(scratch, model_dir)
    if check is not None and summary is not None:
        summary["selection"] = {**summary.get("selection", {}), "select_by": request.select_by,
                                "epochs": epochs, "kept_epoch": check.best_epoch,
                                "fid": check.scores.get(check.best_epoch), "checks": len(check.scores)}
    shutil.rmtree(state_dir, ignore_errors=True)
    return generator


def _fit_check(request: ClassRequest, judge: Judge | None, device: Any, summary: dict[str, Any]) -> Any:
    """The `FitCheck` of --select-by fid, in the feature space of the quality report."""
    if request.select_by is None:
        return None
    from synthmed.generate.report import feature_space
    from synthmed.generate.selection import FitCheck, fid_score

    notes: list[str] = []
    encoder, _ = feature_space(request.dataset, judge, device=device, notes=notes)
    if notes:
        summary["selection"] = {"warnings": notes}
    every, patience = selection_pace(request)
    return FitCheck(fid_score(request.dataset, request.classes, encoder, seed=request.seed, device=device),
                    every=every, patience=patience)


def run_class_generation(request: ClassRequest, *, progress: Progress = no_progress,
                         on_estimate: Callable[[dict[str, Any], Any], None] | None = None) -> dict[str, Any]:
    """Fit and/or sample; returns a summary (and writes OUT atomically). `on_estimate(estimate,
    device)` hears the time estimate before a fit starts."""
    from synthmed.devices import resolve_device

    device = resolve_device(request.device_spec)
    generator, judge, rows = validate_class_request(request)
    dataset, entry = request.dataset, request.entry
    read = _rows_read(dataset, rows or [], request.counts, judge is not None or not request.fit_only)
    if request.select_by is not None:
        from synthmed.generate.selection import val_rows

        read += [row for chosen in val_rows(dataset, request.classes).values() for row in chosen]
    dataset.check_images(read)
    options = RunOptions("generate", {
        "--generator": entry.tag, "-g/--generator-arg": request.args, "--classes": request.classes,
        "--per-class/--ratio/--balance": request.counts, "--fit-only": request.fit_only,
        "--fit-epochs": None if request.model else request.fit_epochs or entry.info.fit_epochs,
        "--model": resolved(request.model), "--judge": resolved(request.judge),
        "--copy-threshold": request.copy_threshold, "--seed": request.seed,
        "--shard": f"{request.shard[0] + 1}/{request.shard[1]}",
        **dict(zip(("--select-by", "--check-every", "--patience"),
                   (request.select_by, *selection_pace(request)) if request.select_by else (None, None, None))),
    })
    summary: dict[str, Any] = {"generator": entry.tag, "seed": request.seed}
    if request.fit_only:
        with OutputFolder(request.out, inputs=[dataset.root, request.model, request.judge], overwrite=request.overwrite,
                          resume=request.resume, resumable=True, options=options) as folder:
            if not folder.finished:
                _fit_or_reuse(request, folder.tmp, rows, device, progress, on_estimate, judge, summary)
                folder.write_provenance("generate", [dataset.root], generator=entry.tag, fit_only=True)
        return {**summary, "model": str(request.out / MODEL_FOLDER)}

    info = {"generation": {"generator": entry.tag, "seed": request.seed, "counts": request.counts,
                           "shard": f"{request.shard[0] + 1}/{request.shard[1]}",
                           "model": str(request.model) if request.model else MODEL_FOLDER, "args": request.args}}
    writer = DatasetWriter(request.out, classes=dataset.classes, command="generate", parents=[dataset.root],
                           inputs=[request.model, request.judge], overwrite=request.overwrite,
                           resume=request.resume, resumable=True, options=options, info=info)
    with writer:
        if generator is None:
            generator = _fit_or_reuse(request, writer.tmp, rows, device, progress, on_estimate, judge, summary)
        plan = plan_sampling(request.counts, generator_name=entry.name, seed=request.seed, shard=request.shard,
                             done=writer.has)
        written = sample_into(writer, generator, entry, dataset, plan, seed=request.seed, device=device,
                              batch_size=request.batch_size, progress=progress)
        mine = [row for row in writer.rows if row["source"] == "synthetic"]
        if not mine:
            raise UsageError(f"nothing to generate in shard {request.shard[0] + 1}/{request.shard[1]}")
        report = write_quality(writer.tmp, dataset, mine, judge=judge, copy_threshold=request.copy_threshold,
                               device=device, strict=request.strict_quality)
    summary.update(written=written, already_done=plan.already_done, images=len(writer.rows),
                   counts={label: sum(1 for r in writer.rows if r["label"] == label) for label in request.counts},
                   quality=report)
    return summary


@dataclass
class VariationRequest:
    dataset: Dataset
    entry: Entry[GeneratorInfo]
    out: Path
    args: dict[str, Any]
    classes: list[str] | None
    counts: dict[str, int] | None
    per_image: int | None
    splits: tuple[str, ...]
    seed: int
    device_spec: str
    shard: tuple[int, int] = (0, 1)
    concurrency: int = 1
    max_requests: int | None = None
    allow_upload: bool = False
    dry_run: bool = False
    judge: Path | None = None
    copy_threshold: float = 0.02
    strict_quality: bool = False
    overwrite: bool = False
    resume: bool = False


def refuse_fit_options(*, model: Path | None, fit_only: bool, fit_epochs: int | None,
                       fit_minutes: float | None = None, select_by: str | None = None) -> None:
    """Options of fitted generators, given with an image-conditional one."""
    for option, value in (("--model", model), ("--fit-only", fit_only or None), ("--fit-epochs", fit_epochs),
                          ("--fit-minutes", fit_minutes), ("--select-by", select_by)):
        if value is not None:
            raise UsageError(f"{option} is for generators that are fitted (conditioning 'class'); "
                             "image-conditional generators are not fitted")


def run_variation_generation(request: VariationRequest, *, progress: Progress = no_progress) -> dict[str, Any]:
    """Plan with `plan_variations`, run with `run_variations`, report quality. Every option is
    checked (by those two and here) before a request is sent or a file written."""
    from synthmed.devices import resolve_device
    from synthmed.generate.variation import (
        check_limits,
        check_upload_permission,
        pending_variations,
        plan_variations,
        run_variations,
    )

    check_copy_threshold(request.copy_threshold)
    check_limits(concurrency=request.concurrency, max_requests=request.max_requests)
    plan = plan_variations(request.dataset, counts=request.counts, per_image=request.per_image,
                           splits=request.splits, classes=request.classes, seed=request.seed, shard=request.shard,
                           generator=request.entry.name)
    device = resolve_device(request.device_spec)
    generator = make_generator(request.entry, request.args)
    if not request.dry_run:  # a dry run sends nothing, so it needs no permission
        check_upload_permission(generator, request.allow_upload)
    judge = load_judge(request.judge, request.dataset) if request.judge is not None else None
    if request.dry_run:
        left = pending_variations(plan, request.out, request.entry.name) if request.resume else plan
        capped = len(left) if request.max_requests is None else min(len(left), request.max_requests)
        return {"dry_run": True, "planned": len(plan), "already_done": len(plan) - len(left), "would_request": capped}
    request.dataset.check_images(_rows_read(request.dataset, [task.source for task in plan],
                                            {row["label"]: 1 for row in (task.source for task in plan)}, True))
    options = RunOptions("generate", {
        "--generator": request.entry.tag, "-g/--generator-arg": request.args, "--classes": request.classes,
        "--per-class/--ratio/--balance": request.counts, "--per-image": request.per_image,
        "--splits": list(request.splits) or ["train"], "--judge": resolved(request.judge),
        "--copy-threshold": request.copy_threshold, "--seed": request.seed,
        "--shard": f"{request.shard[0] + 1}/{request.shard[1]}",
    })
    with DatasetWriter(request.out, classes=request.dataset.classes, command="generate", parents=[request.dataset.root],
                       inputs=[request.judge], overwrite=request.overwrite, resume=request.resume, resumable=True,
                       options=options, info={"generation": {"generator": request.entry.tag, "seed": request.seed}}) as writer:
        result = run_variations(request.dataset, plan, writer, request.entry, generator, device=device,
                                concurrency=request.concurrency, max_requests=request.max_requests,
                                allow_upload=request.allow_upload, progress=progress)
        rows = [row for row in writer.rows if row["source"] == "synthetic"]
        if rows:
            result["quality"] = write_quality(writer.tmp, request.dataset, rows, judge=judge,
                                              copy_threshold=request.copy_threshold, device=device,
                                              strict=request.strict_quality)
    # --max-requests may stop short of the plan: the output is still a finished dataset of what
    # was made, and `--resume` on it later continues with the rest (DatasetWriter seeds from it).
    left = result["planned"] - result["already_done"] - result["written"] - result["rejected"]
    return {**result, "complete": left <= 0, "left": max(left, 0)}

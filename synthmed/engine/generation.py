"""`synthmed generate`: how many images per class, fitting, sampling, resuming, sharding.

Class-conditional generators (`conditioning="class"`) are fitted on the real train images
of the chosen classes (or loaded from `--model DIR`), then sampled per class. Image
conditional ones (`conditioning="image"`) go through `synthmed.engine.variation`.

Row ids and seeds come from the class and the image's index within it:
    id   = f"{generator}-{label}-s{seed}-{index:05d}"
    seed = derive_seed(seed, generator, label, index)
so shards, batches and resumed runs make exactly the same images.
"""

from __future__ import annotations

import inspect
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from synthmed.dataset import Dataset, DatasetWriter, OutputFolder, Row, partial_path, JOURNAL
from synthmed.errors import UsageError
from synthmed.registry import Entry, get_entry
from synthmed.seeding import derive_seed

DEFAULT_FIT_EPOCHS = 50
DEFAULT_MIN_IMAGES = 4
MODEL_FOLDER = "model"
FIT_STATE_FOLDER = "fit-state"
QUALITY_FILE = "quality.json"
SHEETS_FOLDER = "contact-sheets"

# progress_factory(description, total, unit) -> advance(n, **status)
ProgressFactory = Callable[[str, int | None, str], Callable[..., None]]


def _no_progress(description: str, total: int | None, unit: str) -> Callable[..., None]:
    return lambda n=1, **status: None


# --------------------------------------------------------------------------- options


def generator_entry(name: str) -> Entry:
    entry = get_entry("generator", name)
    if entry.meta.get("conditioning") not in ("class", "image"):
        raise UsageError(f"--generator {name}: registered without conditioning='class' or 'image' by {entry.plugin}")
    return entry


def make_generator(entry: Entry, args: dict[str, Any]) -> Any:
    """`factory(**args)`; a rejected argument is a usage error naming the generator."""
    try:
        return entry.factory(**args)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"-g/--generator-arg: generator {entry.name!r}: {exc}") from None


def resolve_classes(dataset: Dataset, classes: Sequence[str] | None) -> list[str]:
    """The chosen classes in dataset order (all when none are given)."""
    if not classes:
        return dataset.classes
    wanted = [c.strip() for item in classes for c in item.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in dataset.classes]
    if unknown:
        raise UsageError(f"--classes: {dataset.root} has no class {unknown[0]!r}; its classes are {', '.join(dataset.classes)}")
    return [c for c in dataset.classes if c in wanted]


def check_count_options(per_class: int | None, ratio: float | None, balance: bool, per_image: int | None = None) -> None:
    given = [name for name, value in (("--per-class", per_class), ("--ratio", ratio), ("--balance", balance or None),
                                      ("--per-image", per_image)) if value is not None]
    if len(given) > 1:
        raise UsageError(f"{given[0]} and {given[1]} cannot be used together; choose one way to say how many images")
    if per_class is not None and per_class < 1:
        raise UsageError("--per-class must be at least 1")
    if ratio is not None and ratio <= 0:
        raise UsageError("--ratio must be positive (0.2 = one synthetic image per five real train images)")
    if per_image is not None and per_image < 1:
        raise UsageError("--per-image must be at least 1")


def real_train_counts(dataset: Dataset) -> dict[str, int]:
    counts = {label: 0 for label in dataset.classes}
    for row in dataset.select(split="train", source="real"):
        counts[row["label"]] += 1
    return counts


def plan_counts(dataset: Dataset, classes: Sequence[str], *, per_class: int | None = None, ratio: float | None = None,
                balance: bool = False) -> dict[str, int]:
    """Images wanted per chosen class: N each, R x its real train count, or up to the largest class."""
    real = real_train_counts(dataset)
    if per_class is not None:
        return {label: per_class for label in classes}
    if ratio is not None:
        return {label: int(round(ratio * real[label])) for label in classes}
    if balance:
        largest = max(real.values())
        return {label: largest - real[label] for label in classes}
    raise UsageError("say how many images to make: --per-class N, --ratio R or --balance")


# --------------------------------------------------------------------------- model folders


def find_model_folder(path: Path) -> Path:
    """`--model DIR`: a model folder, or a generate output holding one in `model/`."""
    path = Path(path)
    if not (path / "config.json").is_file() and (path / MODEL_FOLDER / "config.json").is_file():
        return path / MODEL_FOLDER
    return path


def check_model_config(config: dict[str, Any], folder: Path, entry: Entry, dataset: Dataset, classes: Sequence[str]) -> None:
    """Refuse a model folder fitted by another generator or on another class list, size or channel count."""
    if config.get("name") != entry.name:
        raise UsageError(f"--model {folder}: fitted by generator {config.get('name')!r}, not {entry.name!r}; "
                         f"pass --generator {config.get('name')}")
    if config.get("classes") != dataset.classes:
        raise UsageError(f"--model {folder}: fitted on classes {config.get('classes')}, but {dataset.root} has "
                         f"{dataset.classes}; fit a model on this dataset")
    size = dataset.require_uniform_size()
    if list(config.get("image_size") or []) != list(size) or config.get("channels") != dataset.channels:
        raise UsageError(f"--model {folder}: fitted on {config.get('image_size')} px x {config.get('channels')} channel(s), "
                         f"but {dataset.root} is {list(size)} x {dataset.channels}")
    fitted = config.get("fitted_classes")
    if fitted is not None:
        missing = [c for c in classes if c not in fitted]
        if missing:
            raise UsageError(f"--model {folder}: was not fitted on class {missing[0]!r}; fitted classes: {', '.join(fitted)}")


def load_model(entry: Entry, folder: Path, dataset: Dataset, classes: Sequence[str], args: dict[str, Any]) -> tuple[Any, dict]:
    """A fitted generator from its folder; `args` (from -g) override the saved factory arguments."""
    from synthmed.checkpoint import read_config

    config = read_config(folder, kind="generator")
    check_model_config(config, folder, entry, dataset, classes)
    generator = make_generator(entry, {**config.get("args", {}), **args})
    if not hasattr(generator, "load"):
        raise UsageError(f"--model: generator {entry.name!r} cannot load a saved model (it has no load method)")
    generator.load(folder)
    return generator, config


def save_model(generator: Any, folder: Path, entry: Entry, dataset: Dataset, classes: Sequence[str],
               args: dict[str, Any], epochs: int) -> None:
    """`generator.save(folder)`, then the facts `--model` checks added to its config.json."""
    generator.save(folder)
    path = Path(folder) / "config.json"
    config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"format_version": 1}
    config.update(kind="generator", name=entry.name, plugin=entry.plugin, version=entry.version, args=args,
                  classes=dataset.classes, fitted_classes=list(classes), image_size=list(dataset.require_uniform_size()),
                  channels=dataset.channels, normalization=dataset.stats, fit_epochs=epochs)
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- fitting


def fit_rows(dataset: Dataset, classes: Sequence[str], min_images: int) -> list[Row]:
    """The real train rows a fit uses; every chosen class needs `min_images` of them."""
    dataset.require_uniform_size()
    rows = dataset.select(split="train", source="real", labels=list(classes))
    counts = {label: 0 for label in classes}
    for row in rows:
        counts[row["label"]] += 1
    for label, count in counts.items():
        if count < min_images:
            raise UsageError(f"class {label!r} has {count} real train image(s) in {dataset.root}; fitting needs at least "
                             f"{min_images} per class (leave it out with --classes)")
    return rows


def _accepts(function: Callable[..., Any], name: str) -> bool:
    parameters = inspect.signature(function).parameters
    return name in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def fit_generator(generator: Any, dataset: Dataset, rows: Sequence[Row], *, epochs: int, device: Any, seed: int,
                  state_dir: Path | None, progress_factory: ProgressFactory = _no_progress) -> None:
    images = dataset.load_images(rows)
    labels = dataset.label_indices(rows)
    total = generator.fit_steps(labels, epochs) if hasattr(generator, "fit_steps") else None
    advance = progress_factory(f"fitting {generator.name}", total, "step")
    extras: dict[str, Any] = {}
    if _accepts(generator.fit, "num_classes"):
        extras["num_classes"] = len(dataset.classes)
    if _accepts(generator.fit, "state_dir"):
        extras["state_dir"] = state_dir
    generator.fit(images, labels, epochs=epochs, device=device, seed=seed, progress=advance, **extras)


# --------------------------------------------------------------------------- sampling


def row_id(generator_name: str, label: str, seed: int, index: int) -> str:
    return f"{generator_name}-{label}-s{seed}-{index:05d}"


def image_seed(seed: int, generator_name: str, label: str, index: int) -> int:
    return derive_seed(seed, generator_name, label, index)


@dataclass
class SamplingPlan:
    """The (label, index) pairs of this shard that are not written yet."""

    todo: dict[str, list[int]] = field(default_factory=dict)
    already_done: int = 0

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.todo.values())


def plan_sampling(counts: dict[str, int], *, generator_name: str, seed: int, shard: tuple[int, int],
                  done: Callable[[str], bool] = lambda _id: False) -> SamplingPlan:
    from synthmed.devices import take_shard

    plan = SamplingPlan()
    for label, count in counts.items():
        mine = take_shard(list(range(count)), shard)
        todo = [i for i in mine if not done(row_id(generator_name, label, seed, i))]
        plan.already_done += len(mine) - len(todo)
        if todo:
            plan.todo[label] = todo
    return plan


def sample_into(writer: DatasetWriter, generator: Any, entry: Entry, dataset: Dataset, plan: SamplingPlan, *,
                seed: int, device: Any, batch_size: int = 64, progress_factory: ProgressFactory = _no_progress) -> int:
    """Sample every planned image and write it at once (the writer's journal is the resume record)."""
    from synthmed.imageio import from_chw

    advance = progress_factory("sampling", plan.total, "img")
    written = 0
    batched = hasattr(generator, "sample_seeds")
    for label, indices in plan.todo.items():
        class_index = dataset.classes.index(label)
        for start in range(0, len(indices), batch_size if batched else 1):
            chunk = indices[start : start + (batch_size if batched else 1)]
            seeds = [image_seed(seed, entry.name, label, i) for i in chunk]
            if batched:
                images = generator.sample_seeds(class_index, seeds, device=device)
            else:
                images = generator.sample(class_index, 1, seed=seeds[0], device=device)
            for index, image_seed_, pixels in zip(chunk, seeds, images):
                writer.add_image(from_chw(np.ascontiguousarray(pixels)), id=row_id(entry.name, label, seed, index),
                                 label=label, split="train", source="synthetic", generator=entry.tag, seed=image_seed_)
                written += 1
            advance(len(chunk))
    return written


# --------------------------------------------------------------------------- quality


@dataclass
class Judge:
    module: Any
    config: dict[str, Any]
    path: Path


def load_judge(run: Path, dataset: Dataset) -> Judge:
    """`--judge RUN`: a classifier trained on this dataset's class list (contract 1)."""
    from synthmed.checkpoint import load_classifier

    module, config = load_classifier(Path(run))
    if config.get("classes") != dataset.classes:
        raise UsageError(f"--judge {run}: trained on classes {config.get('classes')}, not {dataset.classes}")
    if config.get("channels", dataset.channels) != dataset.channels:
        raise UsageError(f"--judge {run}: takes {config.get('channels')} channel(s), the dataset has {dataset.channels}")
    return Judge(module, config, Path(run))


def write_quality(folder: Path, dataset: Dataset, rows: Sequence[Row], *, judge: Judge | None, copy_threshold: float,
                  device: Any) -> dict[str, Any]:
    """quality.json and one contact sheet per class (synthetic above real) into `folder`."""
    from synthmed.engine.quality import contact_sheet, quality_report
    from synthmed.imageio import decode_png, encode_png, to_chw

    by_label: dict[str, list[Row]] = {}
    for row in rows:
        by_label.setdefault(row["label"], []).append(row)
    synthetic = {label: np.stack([to_chw(decode_png(folder / r["file_name"])) for r in group])
                 for label, group in by_label.items()}
    real = {label: dataset.load_images(dataset.select(split="train", source="real", labels=[label]))
            for label in dataset.classes}
    report = quality_report(synthetic, real, classes=dataset.classes, judge=judge.module if judge else None,
                            judge_config=judge.config if judge else None, copy_threshold=copy_threshold, device=device)
    report["judge"] = str(judge.path) if judge else None
    sheets = folder / SHEETS_FOLDER
    sheets.mkdir(exist_ok=True)
    for label, images in synthetic.items():
        sheet = contact_sheet(images, real[label])
        (sheets / f"{label}.png").write_bytes(encode_png(sheet))
    (folder / QUALITY_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


# --------------------------------------------------------------------------- the command


@dataclass
class ClassRequest:
    """Everything `generate` needs for a class-conditional generator, validated up front."""

    dataset: Dataset
    entry: Entry
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
    batch_size: int = 64
    judge: Path | None = None
    copy_threshold: float = 0.02
    overwrite: bool = False
    resume: bool = False


def validate_class_request(request: ClassRequest) -> tuple[Any, Judge | None, list[Row] | None]:
    """All checks before any work: returns (loaded generator or None, judge, fit rows or None)."""
    dataset, entry = request.dataset, request.entry
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
    judge = load_judge(request.judge, dataset) if request.judge is not None and not request.fit_only else None
    if request.model is not None:
        generator, _ = load_model(entry, find_model_folder(request.model), dataset, request.classes, request.args)
        return generator, judge, None
    rows = fit_rows(dataset, request.classes, int(entry.meta.get("min_images", DEFAULT_MIN_IMAGES)))
    probe = make_generator(entry, request.args)  # reject bad -g arguments before any work
    if hasattr(probe, "check_size"):
        try:
            probe.check_size(dataset.require_uniform_size(), dataset.channels)
        except ValueError as exc:
            raise UsageError(f"--generator {entry.name}: {exc}; resize with `synthmed preprocess --size N`") from None
    return None, judge, rows


def _fit_or_reuse(request: ClassRequest, tmp: Path, rows: Sequence[Row], device: Any, progress_factory: ProgressFactory) -> Any:
    """Fit into `tmp/model` (continuing a fit checkpoint on --resume), or load a fit finished earlier."""
    entry, dataset = request.entry, request.dataset
    model_dir = tmp / MODEL_FOLDER
    if request.resume and (model_dir / "config.json").is_file():
        generator, _ = load_model(entry, model_dir, dataset, request.classes, request.args)
        return generator
    generator = make_generator(entry, request.args)
    epochs = request.fit_epochs or int(getattr(generator, "default_epochs", DEFAULT_FIT_EPOCHS))
    state_dir = tmp / FIT_STATE_FOLDER
    fit_generator(generator, dataset, rows, epochs=epochs, device=device, seed=request.seed, state_dir=state_dir,
                  progress_factory=progress_factory)
    save_model(generator, model_dir, entry, dataset, request.classes, request.args, epochs)
    shutil.rmtree(state_dir, ignore_errors=True)
    return generator


def run_class_generation(request: ClassRequest, *, progress_factory: ProgressFactory = _no_progress) -> dict[str, Any]:
    """Fit and/or sample; returns a summary (and writes OUT atomically)."""
    from synthmed.devices import resolve_device

    device = resolve_device(request.device_spec)
    generator, judge, rows = validate_class_request(request)
    dataset, entry = request.dataset, request.entry
    summary: dict[str, Any] = {"generator": entry.tag, "seed": request.seed}
    if request.fit_only:
        folder = OutputFolder(request.out, inputs=[dataset.root, request.model, request.judge],
                              overwrite=request.overwrite, resume=request.resume)
        try:
            _fit_or_reuse(request, folder.tmp, rows, device, progress_factory)
            folder.write_provenance("generate", [dataset.root], generator=entry.tag, fit_only=True)
        except UsageError:
            folder.discard()
            raise
        folder.commit()
        return {**summary, "model": str(request.out / MODEL_FOLDER)}

    info = {"generation": {"generator": entry.tag, "seed": request.seed, "counts": request.counts,
                           "shard": f"{request.shard[0] + 1}/{request.shard[1]}",
                           "model": str(request.model) if request.model else MODEL_FOLDER, "args": request.args}}
    writer = DatasetWriter(request.out, classes=dataset.classes, command="generate", parents=[dataset.root],
                           inputs=[request.model, request.judge], overwrite=request.overwrite,
                           resume=request.resume, resumable=True, info=info)
    with writer:
        if generator is None:
            generator = _fit_or_reuse(request, writer.tmp, rows, device, progress_factory)
        plan = plan_sampling(request.counts, generator_name=entry.name, seed=request.seed, shard=request.shard,
                             done=writer.has)
        written = sample_into(writer, generator, entry, dataset, plan, seed=request.seed, device=device,
                              batch_size=request.batch_size, progress_factory=progress_factory)
        mine = [row for row in writer.rows if row["source"] == "synthetic"]
        if not mine:
            raise UsageError(f"nothing to generate in shard {request.shard[0] + 1}/{request.shard[1]}")
        report = write_quality(writer.tmp, dataset, mine, judge=judge, copy_threshold=request.copy_threshold,
                               device=device)
    summary.update(written=written, already_done=plan.already_done, images=len(writer.rows),
                   counts={label: sum(1 for r in writer.rows if r["label"] == label) for label in request.counts},
                   quality=report)
    return summary


# --------------------------------------------------------------------------- image-conditional generators


@dataclass
class VariationRequest:
    dataset: Dataset
    entry: Entry
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
    overwrite: bool = False
    resume: bool = False


def check_variation_options(*, splits: Sequence[str], concurrency: int, max_requests: int | None,
                            per_image: int | None, counts_given: bool, model: Path | None, fit_only: bool,
                            fit_epochs: int | None) -> None:
    from synthmed.dataset import SPLITS

    for option, value in (("--model", model), ("--fit-only", fit_only or None), ("--fit-epochs", fit_epochs)):
        if value is not None:
            raise UsageError(f"{option} is for generators that are fitted (conditioning 'class'); "
                             "image-conditional generators are not fitted")
    for split in splits:
        if split not in SPLITS:
            raise UsageError(f"--splits: {split!r} is not one of {', '.join(SPLITS)}")
    if concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if max_requests is not None and max_requests < 1:
        raise UsageError("--max-requests must be at least 1")
    if per_image is None and not counts_given:
        raise UsageError("say how many images to make: --per-image K, --per-class N, --ratio R or --balance")


def check_upload(generator: Any, allow_upload: bool) -> None:
    host = getattr(generator, "upload_host", None)
    if host and not allow_upload:
        raise UsageError(f"generator {getattr(generator, 'name', '?')!r} sends the source images to {host}; "
                         "pass --allow-upload (or set SYNTHMED_ALLOW_UPLOAD=1) if that is permitted")


def journal_ids(out: Path) -> set[str]:
    """Ids already written to `out` by an interrupted run, or by a finished one that
    `--resume` would continue (read-only, for --dry-run)."""
    path = partial_path(Path(out)) / JOURNAL
    ids: set[str] = set()
    if not path.is_file() and (Path(out) / "dataset.json").is_file():
        return {row["id"] for row in Dataset.open(out).rows}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                ids.add(json.loads(line)["id"])
            except (ValueError, KeyError):
                break
    return ids


def run_variation_generation(request: VariationRequest, *, progress_factory: ProgressFactory = _no_progress
                             ) -> dict[str, Any]:
    """Plan with `plan_variations`, run with `run_variations` (contract 5), report quality."""
    from synthmed.devices import resolve_device

    device = resolve_device(request.device_spec)
    generator = make_generator(request.entry, request.args)
    if not request.dry_run:  # a dry run sends nothing, so it needs no permission
        check_upload(generator, request.allow_upload)
    judge = load_judge(request.judge, request.dataset) if request.judge is not None else None
    from synthmed.engine.variation import plan_variations, run_variations

    plan = plan_variations(request.dataset, counts=request.counts, per_image=request.per_image,
                           splits=request.splits, classes=request.classes, seed=request.seed, shard=request.shard)
    if request.dry_run:
        done = journal_ids(request.out) if request.resume else set()
        left = [p for p in plan if p.id not in done]
        capped = len(left) if request.max_requests is None else min(len(left), request.max_requests)
        return {"dry_run": True, "planned": len(plan), "already_done": len(plan) - len(left), "would_request": capped}
    writer = DatasetWriter(request.out, classes=request.dataset.classes, command="generate",
                           parents=[request.dataset.root], inputs=[request.judge], overwrite=request.overwrite,
                           resume=request.resume,
                           resumable=True, info={"generation": {"generator": request.entry.tag, "seed": request.seed}})
    advance = progress_factory("variations", len(plan), "img")
    try:
        result = run_variations(request.dataset, plan, writer, request.entry, generator, device=device,
                                concurrency=request.concurrency, max_requests=request.max_requests,
                                allow_upload=request.allow_upload, on_progress=advance)
    except BaseException as exc:
        writer.__exit__(type(exc), exc, exc.__traceback__)
        raise
    # --max-requests may stop short of the plan: the output is still a finished dataset of what
    # was made, and `--resume` on it later continues with the rest (DatasetWriter seeds from it).
    left = result["planned"] - result["already_done"] - result["written"] - result["rejected"]
    rows = [row for row in writer.rows if row["source"] == "synthetic"]
    if rows:
        result["quality"] = write_quality(writer.tmp, request.dataset, rows, judge=judge,
                                          copy_threshold=request.copy_threshold, device=device)
    writer.finish()
    return {**result, "complete": left <= 0, "left": max(left, 0)}

"""`synthmed interpolate` from options to output: validate everything first, then fit or
load the autoencoder, write the interpolants, measure them and draw a strip per class.

    settings = InterpolationSettings(dataset=Path("data"), out=Path("interp"), autoencoder="cnn-ae")
    job = prepare(settings)        # all usage errors are raised here, before any work
    summary = execute(job)         # writes OUT/ (dataset + model/ + quality.json + figures/)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synthmed.data import Dataset
from synthmed.interpolate import latent as interp
from synthmed.errors import UsageError
from synthmed.jsonio import write_json
from synthmed.progress import Progress, no_progress, start_task
from synthmed.seeding import derive_seed, seed_everything

DEFAULT_ALPHAS = "0.25,0.5,0.75"
DEFAULT_FIT_EPOCHS = 20
STRIP_GROUPS = 4  # rows per class strip


@dataclass
class InterpolationSettings:
    dataset: Path
    out: Path
    autoencoder: str | None = None  # None: cnn-ae, or the --model's own name
    autoencoder_args: dict[str, Any] = field(default_factory=dict)
    model_dir: Path | None = None
    fit_epochs: int | None = None  # None: DEFAULT_FIT_EPOCHS (a --model is used as it is)
    loss: str = "mse"
    batch_size: int = 32
    lr: float | None = None  # None: the autoencoder's registered default (meta `lr`), else 1e-3
    n: int = 2
    within_class: bool = True
    alphas: str | None = None
    mix_weights: list[str] = field(default_factory=list)
    concentration: float | None = None
    per_class: int | None = None
    ratio: float | None = None
    classes: list[str] | None = None
    near_copy_ssim: float = 0.95
    lpips_weights: Path | None = None
    seed: int = 0
    device: str = "auto"
    shard: str | None = None
    overwrite: bool = False
    resume: bool = False


@dataclass
class PreparedJob:
    settings: InterpolationSettings
    dataset: Dataset
    entry: Any
    model_config: dict[str, Any] | None
    args: dict[str, Any]
    device: Any
    plan: list[interp.PlannedInterpolant]
    parent_rows: list[dict[str, str]]
    weight_mode: str
    lpips: Any = None
    lpips_backbone: str | None = None
    lr: float = 1e-3
    loaded_model: Any = None  # the --model, loaded (and so checked) before any output exists


def _check_numbers(s: InterpolationSettings) -> None:
    if s.n < 2:
        raise UsageError(f"--n {s.n}: an interpolation mixes at least 2 images")
    if s.per_class is not None and s.ratio is not None:
        raise UsageError("--per-class and --ratio: give only one of them")
    if s.per_class is not None and s.per_class < 0:
        raise UsageError(f"--per-class {s.per_class}: must not be negative")
    if s.ratio is not None and s.ratio < 0:
        raise UsageError(f"--ratio {s.ratio}: must not be negative")
    if s.loss not in interp.LOSSES:
        raise UsageError(f"--loss {s.loss!r}: expected one of {', '.join(interp.LOSSES)}")
    if (s.fit_epochs is not None and s.fit_epochs < 1) or s.batch_size < 1 or (s.lr is not None and s.lr <= 0):
        raise UsageError("--fit-epochs and --batch-size must be at least 1 and --lr positive")
    if s.model_dir is not None and s.fit_epochs is not None:
        raise UsageError("--fit-epochs and --model: a --model is used as it is; give only one of them")
    if not 0 < s.near_copy_ssim <= 1:
        raise UsageError(f"--near-copy-ssim {s.near_copy_ssim}: choose a value in (0, 1]")


def _weight_vectors(s: InterpolationSettings) -> tuple[list[tuple[float, ...]] | None, str]:
    given = [name for name, value in (("--alphas", s.alphas), ("--mix-weights", s.mix_weights), ("--concentration", s.concentration))
             if value]
    if len(given) > 1:
        raise UsageError(f"{' and '.join(given)}: give only one way to choose the weights")
    if s.concentration is not None and s.concentration <= 0:
        raise UsageError(f"--concentration {s.concentration}: must be positive")
    if s.mix_weights:
        return interp.parse_weight_vectors(s.mix_weights, s.n), "weights"
    if s.alphas is not None:
        if s.n != 2:
            raise UsageError(f"--alphas is for pairs (--n 2); with --n {s.n} use --concentration or --mix-weights")
        return interp.parse_alphas(s.alphas), "alphas"
    if s.concentration is None and s.n == 2:
        return interp.parse_alphas(DEFAULT_ALPHAS), "alphas"
    return None, "dirichlet"


def prepare(s: InterpolationSettings) -> PreparedJob:
    """Validate the options, the dataset and the model folder; plan the interpolants."""
    from synthmed.checkpoint import load_checkpoint, read_config
    from synthmed.devices import parse_shard, resolve_device, take_shard
    from synthmed.interpolate.quality import load_lpips
    from synthmed.registry import get_entry

    _check_numbers(s)
    weight_vectors, weight_mode = _weight_vectors(s)
    shard = parse_shard(s.shard)
    if shard[1] > 1 and s.model_dir is None:
        raise UsageError("--shard needs --model DIR: fit once, then let every shard use the same autoencoder")
    dataset = Dataset.open(s.dataset)
    size = dataset.require_uniform_size()
    model_config = None
    if s.model_dir is not None:
        model_config = read_config(s.model_dir, kind="autoencoder")
        if s.autoencoder and s.autoencoder != model_config.get("name"):
            raise UsageError(f"--model {s.model_dir} holds autoencoder {model_config.get('name')!r}, not {s.autoencoder!r}")
        if s.autoencoder_args:
            raise UsageError("-a/--autoencoder-arg: the arguments of a --model are fixed when it was fitted")
        if [int(v) for v in model_config.get("image_size", [])] != list(size):
            trained = "x".join(map(str, model_config.get("image_size", []))) or "unknown"
            raise UsageError(
                f"--model {s.model_dir} was trained on {trained} px images but {s.dataset} has "
                f"{size[0]}x{size[1]} px; fit a new model or resize with `synthmed preprocess --size`"
            )
        if int(model_config.get("channels", -1)) != dataset.channels:
            raise UsageError(
                f"--model {s.model_dir} was trained on {model_config.get('channels')}-channel images, "
                f"{s.dataset} has {dataset.channels}"
            )
    name = s.autoencoder or (model_config or {}).get("name") or "cnn-ae"
    entry = get_entry("autoencoder", name)
    args = dict((model_config or {}).get("args", {}))
    for fixed in ("in_channels", "image_size"):
        args.pop(fixed, None)
    args.update(s.autoencoder_args)
    if s.model_dir is not None:
        loaded_model, _ = load_checkpoint(s.model_dir, kind="autoencoder")  # a corrupt file fails here
    else:
        loaded_model = None
        interp.build_autoencoder(entry, channels=dataset.channels, image_size=size, args=args)  # checks the args
    classes = dataset.classes
    if s.classes:
        unknown = [c for c in s.classes if c not in classes]
        if unknown:
            raise UsageError(f"--classes: {', '.join(unknown)} not in {s.dataset} (classes: {', '.join(classes)})")
    rows = interp.parent_rows(dataset)
    if not rows:
        raise UsageError(f"{s.dataset}: no train images to interpolate")
    counts = interp.counts_per_class(rows, classes, per_class=s.per_class, ratio=s.ratio)
    if s.classes:
        counts = {label: (count if label in s.classes else 0) for label, count in counts.items()}
    plan = interp.plan_interpolants(
        rows, classes, n=s.n, counts=counts, seed=s.seed, name=entry.name, weight_vectors=weight_vectors,
        concentration=s.concentration or 1.0, within_class=s.within_class,
    )
    if not plan:
        raise UsageError("nothing to make: every class gets 0 interpolants (raise --per-class or --ratio)")
    device = resolve_device(s.device)
    lpips, backbone = (None, None)
    if s.lpips_weights is not None:
        lpips, backbone = load_lpips(s.lpips_weights, device=device)
    return PreparedJob(
        settings=s, dataset=dataset, entry=entry, model_config=model_config, args=args, device=device,
        plan=take_shard(plan, shard), parent_rows=rows, weight_mode=weight_mode, lpips=lpips, lpips_backbone=backbone,
        lr=s.lr if s.lr is not None else entry.info.lr, loaded_model=loaded_model,
    )


def _obtain_model(job: PreparedJob, writer: Any, images: np.ndarray, progress: Progress) -> tuple[Any, str]:
    """The --model, a model fitted before an interruption (--resume), or a new fit."""
    from synthmed.checkpoint import load_checkpoint, save_checkpoint

    s = job.settings
    if job.loaded_model is not None:
        return job.loaded_model, str(s.model_dir)
    saved = writer.tmp / "model"
    if writer.folder.resumed and (saved / "config.json").is_file():
        model, _ = load_checkpoint(saved, kind="autoencoder")
        return model, "model"  # as an uninterrupted run says: a resumed output is the same output
    size = job.dataset.require_uniform_size()
    seed_everything(derive_seed(s.seed, "autoencoder-init"))  # the initial weights come from --seed too
    model = interp.build_autoencoder(job.entry, channels=job.dataset.channels, image_size=size, args=job.args)
    epochs = s.fit_epochs or DEFAULT_FIT_EPOCHS
    with start_task(progress, f"fitting {job.entry.name}", total=epochs, unit="epoch") as task:
        history = interp.fit_autoencoder(
            model, images, epochs=epochs, loss=s.loss, batch_size=s.batch_size, lr=job.lr, device=job.device,
            seed=s.seed, advance=task,
        )
    config = interp.autoencoder_config(
        job.entry, args=job.args, channels=job.dataset.channels, image_size=size, classes=job.dataset.classes,
        loss=s.loss, fit_epochs=epochs, seed=s.seed, lr=job.lr, batch_size=s.batch_size,
        final_loss=history[-1], bit_depth=job.dataset.bit_depth,
    )
    save_checkpoint(saved, model.cpu(), config)
    return model.to(job.device), "model"


def run_options(job: PreparedJob) -> Any:
    """The options that determine the output (what `--resume` checks)."""
    from synthmed.data import RunOptions
    from synthmed.data.resume import resolved

    s = job.settings
    return RunOptions("interpolate", {
        "--autoencoder": job.entry.tag, "-a/--autoencoder-arg": job.args, "--model": resolved(s.model_dir),
        "--fit-epochs": None if s.model_dir else s.fit_epochs or DEFAULT_FIT_EPOCHS, "--loss": s.loss,
        "--batch-size": s.batch_size, "--lr": job.lr, "--n": s.n, "--within-class": s.within_class,
        "--alphas": s.alphas, "--mix-weights": list(s.mix_weights), "--concentration": s.concentration,
        "--per-class": s.per_class, "--ratio": s.ratio, "--classes": s.classes, "--near-copy-ssim": s.near_copy_ssim,
        "--lpips-weights": resolved(s.lpips_weights), "--seed": s.seed, "--shard": s.shard or "1/1",
    })


def execute(job: PreparedJob, *, progress: Progress = no_progress) -> dict[str, Any]:
    """Write the output dataset; returns the summary (counts and quality)."""
    from synthmed.data import DatasetWriter

    s, dataset = job.settings, job.dataset
    dataset.check_images([*job.parent_rows, *dataset.select(split="val")])
    parent_images = dataset.load_images(job.parent_rows)
    index = {row["id"]: i for i, row in enumerate(job.parent_rows)}
    info = {
        "interpolation": {
            "autoencoder": job.entry.tag,
            "n": s.n,
            "mode": "within-class" if s.within_class else "across-classes",
            "weights": job.weight_mode,
            "seed": s.seed,
        }
    }
    with DatasetWriter(
        s.out, classes=dataset.classes, command="interpolate", parents=[s.dataset], inputs=[s.model_dir, s.lpips_weights],
        overwrite=s.overwrite, resume=s.resume, resumable=True, options=run_options(job), info=info,
    ) as writer:
        model, model_source = _obtain_model(job, writer, parent_images, progress)
        done = sum(1 for item in job.plan if writer.has(item.id))
        with start_task(progress, "interpolating", total=len(job.plan), unit="img", done=done) as task:
            counts = interp.run_interpolation(
                job.plan, parent_images, index, model, writer, generator=job.entry.tag, bit_depth=dataset.bit_depth,
                device=job.device, batch_size=s.batch_size, advance=task,
            )
        quality = measure(job, writer, model, parent_images, index, model_source)
        write_json(writer.tmp / "quality.json", quality)
        draw_strips(job, writer, parent_images, index)
        per_class: dict[str, int] = {}
        for row in writer.rows:
            per_class[row["label"]] = per_class.get(row["label"], 0) + 1
    return {**counts, "images": len(writer.rows), "per_class": per_class, "quality": quality}


def _written_pixels(writer: Any) -> np.ndarray:
    from synthmed.data.imageio import decode_png, to_chw

    return np.stack([to_chw(decode_png(writer.tmp / row["file_name"])) for row in writer.rows])


def measure(job: PreparedJob, writer: Any, model: Any, parent_images: np.ndarray, index: dict[str, int],
            model_source: str) -> dict[str, Any]:
    from synthmed.data import origins_of
    from synthmed.interpolate.quality import interpolant_quality, reconstruction_quality

    val_rows = job.dataset.select(split="val")
    val_images = job.dataset.load_images(val_rows) if val_rows else parent_images[:0]
    synthetic = _written_pixels(writer)
    parents = [[index[p] for p in origins_of(row)] for row in writer.rows]
    interpolants = interpolant_quality(
        model, synthetic, parents, parent_images, device=job.device, near_copy_ssim=job.settings.near_copy_ssim,
        reference=val_images, lpips=job.lpips, labels=[row["label"] for row in writer.rows],
    )
    return {
        "autoencoder": job.entry.tag,
        "model": model_source,
        "lpips": f"{job.lpips_backbone} (local weights)" if job.lpips else "unavailable (pass --lpips-weights PATH)",
        "reconstruction_val": reconstruction_quality(model, val_images, device=job.device, lpips=job.lpips),
        **interpolants,
    }


def draw_strips(job: PreparedJob, writer: Any, parent_images: np.ndarray, index: dict[str, int]) -> list[Path]:
    """figures/strip-<class>.png: per group a row of parents and the interpolants between them
    (for pairs: first parent, interpolants by increasing alpha, second parent), each tile titled
    with the parent's id or the interpolant's weights."""
    from synthmed import figures
    from synthmed.data.imageio import decode_png, to_chw

    written = {row["id"]: row for row in writer.rows}
    folder = writer.tmp / "figures"
    paths = []
    for label in job.dataset.classes:
        groups: dict[tuple[str, int], list[interp.PlannedInterpolant]] = {}
        for item in job.plan:
            if item.anchor == label and item.id in written:
                groups.setdefault((item.anchor, item.group), []).append(item)
        if not groups:
            continue
        rows, titles = [], []
        for items in list(groups.values())[:STRIP_GROUPS]:
            parents = [(parent_images[index[p]], f"parent {p}") for p in items[0].parents]
            made = [(to_chw(decode_png(writer.tmp / written[i.id]["file_name"])),
                     "w " + "/".join(f"{w:.2f}" for w in i.weights)) for i in sorted(items, key=lambda i: i.weights[-1])]
            tiles = [parents[0], *made, parents[1]] if len(parents) == 2 else [*parents, *made]
            rows.append([image for image, _ in tiles])
            titles.append([title for _, title in tiles])
        folder.mkdir(exist_ok=True)
        fig = figures.image_grid(rows, titles=titles, title=f"{label}: parents and interpolants (weights per parent)")
        paths.append(figures.save(fig, folder / f"strip-{label}.png"))
    return paths

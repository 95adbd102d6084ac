"""`synthmed gradcam` as a library call: select images, compute maps, write the report folder.

    OUT/
      maps.csv                    one row per map (image, target): class, prediction, files
      maps/<split>/<label>/<stem>.safetensors   one float32 (H, W) tensor per target
      overlays/<split>/<label>/<stem>--<target>.png
      cam_grid.png                the maps of a few images per class (first target)
      pairs.csv, pairs/<label>/<synthetic>--<real>.png   (with pairs=True)
      summary.json, provenance.json

The output is a report (OutputFolder), not a dataset: its rows describe maps, not images.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Sequence

import numpy as np

from synthmed.data import SOURCES, SPLITS, Dataset, iter_chunks, OutputFolder, partial_path, Row, RunOptions
from synthmed.errors import UsageError
from synthmed.gradcam.pair_report import write_pairs
from synthmed.gradcam.pairs import baseline_pairs, synthetic_pairs
from synthmed.jsonio import read_json, write_json
from synthmed.progress import Progress, no_progress, start_task
from synthmed.seeding import derive_seed

MAP_COLUMNS = (
    "id", "file_name", "label", "split", "source", "origin", "target", "target_class", "method", "layer",
    "predicted", "probability", "target_probability", "maps", "key", "overlay",
)  # fmt: skip


@dataclass
class GradcamRequest:
    """Everything `synthmed gradcam` takes; see docs/gradcam.md."""

    run: Path
    dataset: Path
    out: Path
    targets: Sequence[str] = ("predicted",)
    method: str = "gradcam"
    layer: str | None = None
    splits: Sequence[str] | None = None
    classes: Sequence[str] | None = None
    source: str | None = None
    limit: int | None = None
    pairs: bool = False
    figures: bool = True
    seed: int = 0
    device: str = "auto"
    batch_size: int = 32
    overwrite: bool = False
    resume: bool = False


@dataclass
class GradcamPlan:
    """A validated request: what to compute, decided before any model is loaded."""

    request: GradcamRequest
    dataset: Dataset
    model_folder: Path
    config: dict[str, Any]
    targets: list[str]
    rows: list[Row]  # images to explain, in dataset order
    pairs: list[Any] = field(default_factory=list)  # synthmed.gradcam.pairs.Pair


def limit_per_class(rows: Sequence[Row], limit: int | None, *, seed: int) -> list[Row]:
    """At most `limit` rows per class, drawn with `seed` (per class), kept in dataset order."""
    if limit is None:
        return list(rows)
    keep: set[str] = set()
    for label in sorted({row["label"] for row in rows}):
        pool = [row["id"] for row in rows if row["label"] == label]
        if len(pool) > limit:
            rng = np.random.default_rng(derive_seed(seed, "gradcam-limit", label))
            pool = [pool[i] for i in sorted(rng.choice(len(pool), size=limit, replace=False))]
        keep.update(pool)
    return [row for row in rows if row["id"] in keep]


def plan(request: GradcamRequest) -> GradcamPlan:
    """Check the request against the dataset and the RUN (cheap: no model is built)."""
    from synthmed.checkpoint import model_folders, read_config
    from synthmed.gradcam.cam import METHODS, resolve_targets

    dataset = Dataset.open(request.dataset)
    folder = model_folders(request.run)[0]
    config = read_config(folder, kind="classifier")
    _check_run_fits(request, dataset, config)
    if request.method not in METHODS:
        raise UsageError(f"--method {request.method!r}: choose one of {', '.join(METHODS)}")
    if request.batch_size < 1:
        raise UsageError(f"--batch-size {request.batch_size}: must be at least 1")
    if request.limit is not None and request.limit < 1:
        raise UsageError(f"--limit {request.limit}: must be at least 1")
    targets = resolve_targets(request.targets, dataset.classes)
    splits, classes = _check_selection(request, dataset)
    where = _where(request.dataset, splits, classes)
    if request.pairs:
        pairs = _plan_pairs(request, dataset, splits, classes, where)
        needed = {row["id"] for pair in pairs for row in (pair.first, pair.second)}
        rows = [row for row in dataset.rows if row["id"] in needed]
        return GradcamPlan(request, dataset, folder, config, targets, rows, pairs)
    rows = limit_per_class(dataset.select(splits, request.source, classes), request.limit, seed=request.seed)
    if not rows:
        source = f" with source {request.source}" if request.source else ""
        raise UsageError(f"{where}: no images{source}; check --splits, --classes and --source")
    return GradcamPlan(request, dataset, folder, config, targets, rows)


def _check_run_fits(request: GradcamRequest, dataset: Dataset, config: dict[str, Any]) -> None:
    """The classifier's classes, channels and image size must be the dataset's."""
    if list(config.get("classes", [])) != dataset.classes:
        raise UsageError(
            f"{request.run}: the classifier was trained on classes {config.get('classes')} but {request.dataset} "
            f"has {dataset.classes}; use a run trained on this dataset's classes"
        )
    if int(config.get("channels", dataset.channels)) != dataset.channels:
        raise UsageError(f"{request.run}: the classifier takes {config['channels']} channel(s), {request.dataset} has {dataset.channels}")
    size = dataset.require_uniform_size()
    trained = config.get("image_size") or size
    trained_size = (int(trained), int(trained)) if isinstance(trained, (int, float)) else tuple(int(v) for v in trained)
    if trained_size != size:
        raise UsageError(
            f"{request.run}: the classifier was trained on {trained_size[0]}x{trained_size[1]} images, {request.dataset} "
            f"has {size[0]}x{size[1]}; resize with `synthmed preprocess --size {trained_size[0]}`"
        )


def _check_selection(request: GradcamRequest, dataset: Dataset) -> tuple[list[str] | None, list[str] | None]:
    """--splits, --classes and --source checked; (splits, classes) as lists or None for all."""
    splits = list(request.splits) if request.splits else None
    for split in splits or ():
        if split not in SPLITS:
            raise UsageError(f"--splits {split!r}: choose from {', '.join(SPLITS)}")
    classes = list(request.classes) if request.classes else None
    for label in classes or ():
        if label not in dataset.classes:
            raise UsageError(f"--classes {label!r}: not a class of {request.dataset}; classes are {', '.join(dataset.classes)}")
    if request.source is not None and request.source not in SOURCES:
        raise UsageError(f"--source {request.source!r}: choose from {', '.join(SOURCES)}")
    if request.source is not None and request.pairs:
        raise UsageError("--source cannot be combined with --pairs: --pairs takes the synthetic images and the real images they came from")
    return splits, classes


def _plan_pairs(request: GradcamRequest, dataset: Dataset, splits, classes, where: str) -> list[Any]:
    """Synthetic pairs of the selected synthetic images, then as many baseline pairs per class."""
    synthetic = dataset.select(splits, "synthetic", classes)
    if not synthetic:
        raise UsageError(f"{where}: no synthetic images; --pairs compares synthetic images with their real origins (make some with `synthmed generate`)")
    synthetic = limit_per_class(synthetic, request.limit, seed=request.seed)
    pairs = synthetic_pairs(synthetic, {row["id"]: row for row in dataset.rows})
    if not pairs:
        raise UsageError(f"{where}: none of the {len(synthetic)} synthetic images has its origin in the dataset; --pairs needs the real images they were made from")
    wanted: dict[str, int] = {}
    for pair in pairs:
        wanted[pair.label] = wanted.get(pair.label, 0) + 1
    return pairs + baseline_pairs(dataset.select(splits, "real", classes), wanted, seed=request.seed)


def _where(dataset: Path, splits: list[str] | None, classes: list[str] | None) -> str:
    parts = [str(dataset)]
    if splits:
        parts.append(f"split {','.join(splits)}")
    if classes:
        parts.append(f"classes {','.join(classes)}")
    return ", ".join(parts)


def _stem_path(folder: str, row: Row, suffix: str) -> str:
    """`folder/<split>/<label>/<file stem><suffix>`: the dataset's own layout, POSIX."""
    name = PurePosixPath(row["file_name"])
    return str(PurePosixPath(folder, row["split"], row["label"], name.stem + suffix))


def run_gradcam(request: GradcamRequest, *, progress: Progress = no_progress) -> tuple[Path, dict[str, Any]]:
    """Validate, compute and write the report; returns (output path, summary). The images
    still to explain (after `resume` skipped finished ones) are reported as one task."""
    from synthmed.devices import resolve_device

    job = plan(request)
    device = resolve_device(request.device)
    job.dataset.check_images(job.rows)
    options = RunOptions("gradcam", {
        "--target": list(job.targets), "--method": request.method, "--layer": request.layer,
        "--splits": list(request.splits) if request.splits else None,
        "--classes": list(request.classes) if request.classes else None, "--source": request.source,
        "--limit": request.limit, "--pairs": request.pairs, "--figures": request.figures, "--seed": request.seed,
    })
    # A failure other than bad input keeps the unfinished folder for --resume.
    with OutputFolder(request.out, inputs=[request.dataset, request.run], overwrite=request.overwrite,
                      resume=request.resume, resumable=True, options=options) as folder:
        if folder.finished:  # --resume of a finished report with the same options: nothing to do
            return folder.out, read_json(folder.out / "summary.json", what="a gradcam report")
        summary = _write_report(job, folder.tmp, device, progress)
        folder.write_provenance(
            "gradcam", parents=[request.dataset, job.model_folder], method=request.method, layer=summary["layer"]["name"]
        )
    return folder.out, summary


def _write_report(job: GradcamPlan, tmp: Path, device: Any, progress: Progress) -> dict[str, Any]:
    import torch

    from synthmed.checkpoint import load_checkpoint
    from synthmed.batches import model_input
    from synthmed.gradcam.cam import CamExtractor, choose_layer, find_layers, predict, target_indices

    request, dataset, config = job.request, job.dataset, job.config
    model, _ = load_checkpoint(job.model_folder, kind="classifier")
    model = model.to(device).eval()
    model_name = f"classifier {config.get('name')!r} ({job.model_folder})"
    layer = choose_layer(
        find_layers(model, channels=dataset.channels, image_size=dataset.require_uniform_size(), device=device),
        request.layer,
        model_name=model_name,
    )
    done = {row["id"]: _finished(tmp, row, job, layer.name) for row in job.rows}
    # Batches are cut from the whole plan, not from what is left: a resumed run then computes
    # each map in the batch an uninterrupted run would (batch make-up moves float results).
    batches = [batch for batch in iter_chunks(job.rows, request.batch_size)
               if any(done[row["id"]] is None for row in batch)]
    extractor = CamExtractor(model, layer, request.method)
    task = start_task(progress, "explaining", total=sum(done[row["id"]] is None for row in job.rows), unit="img")
    try:
        for batch in batches:
            images = dataset.load_images(batch)
            x = model_input(images, config["normalization"], device=device)
            probabilities = predict(model, x)
            predicted = probabilities.argmax(axis=1)
            labels = dataset.label_indices(batch)
            indices, maps = {}, {}
            for target in job.targets:
                indices[target] = target_indices(target, predicted=predicted, labels=labels, classes=dataset.classes)
                maps[target] = extractor.maps(x, indices[target])
            missing = [i for i, row in enumerate(batch) if done[row["id"]] is None]
            for i in missing:
                row = batch[i]
                done[row["id"]] = _write_image(
                    tmp, job, layer.name, row, images[i], probabilities[i],
                    {target: int(indices[target][i]) for target in job.targets},
                    {target: maps[target][i] for target in job.targets},
                )  # fmt: skip
            task(len(missing))
        task.finish()
    finally:
        extractor.close()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    records = [record for row in job.rows for record in done[row["id"]]]
    _write_csv(tmp / "maps.csv", MAP_COLUMNS, records)
    if request.figures:
        from synthmed.gradcam.figures import write_cam_grid

        write_cam_grid(tmp / "cam_grid.png", dataset, records, tmp)

    summary: dict[str, Any] = {
        "run": str(request.run),
        "dataset": str(request.dataset),
        "model": config.get("name"),
        "classes": dataset.classes,
        "method": request.method,
        "layer": {"name": layer.name, "kind": layer.kind, "shape": list(layer.shape), "grid": list(layer.grid)},
        "targets": job.targets,
        "images": len(job.rows),
        "maps": len(records),
        "seed": request.seed,
        "pairs": write_pairs(job, tmp, records) if request.pairs else None,
    }
    write_json(tmp / "summary.json", summary)
    return summary


def _write_image(
    tmp: Path,
    job: GradcamPlan,
    layer: str,
    row: Row,
    pixels: np.ndarray,
    probabilities: np.ndarray,
    target_class: dict[str, int],
    maps: dict[str, np.ndarray],
) -> list[dict[str, str]]:
    """Overlays, then the maps file (last: it marks the image as done for --resume); the
    image's maps.csv rows, also kept in the maps file's metadata."""
    from safetensors.numpy import save_file

    from synthmed.checkpoint import write_safetensors
    from synthmed.gradcam.figures import overlay_png

    method, classes = job.request.method, job.dataset.classes
    predicted = int(probabilities.argmax())
    maps_path = _stem_path("maps", row, ".safetensors")
    records = []
    for target in job.targets:
        index = target_class[target]
        overlay = ""
        if job.request.figures:
            overlay = _stem_path("overlays", row, f"--{target}.png")
            title = (
                f"{row['id']}\n{row['label']} ({row['source']}), predicted {classes[predicted]} "
                f"{probabilities[predicted]:.2f}\n{method} for {classes[index]}"
            )
            (tmp / overlay).parent.mkdir(parents=True, exist_ok=True)
            (tmp / overlay).write_bytes(overlay_png(pixels, maps[target], title))
        records.append(
            {
                "id": row["id"], "file_name": row["file_name"], "label": row["label"], "split": row["split"],
                "source": row["source"], "origin": row.get("origin", ""), "target": target,
                "target_class": classes[index], "method": method, "layer": layer,
                "predicted": classes[predicted], "probability": f"{probabilities[predicted]:.6f}",
                "target_probability": f"{probabilities[index]:.6f}", "maps": maps_path, "key": target,
                "overlay": overlay,
            }
        )  # fmt: skip
    tensors = {target: np.ascontiguousarray(maps[target], dtype=np.float32) for target in job.targets}
    metadata = {"id": row["id"], "method": method, "layer": layer, "rows": json.dumps(records)}
    target = tmp / maps_path
    target.parent.mkdir(parents=True, exist_ok=True)
    write_safetensors(target, lambda name: save_file(tensors, name, metadata=metadata))
    return records


def _finished(tmp: Path, row: Row, job: GradcamPlan, layer: str) -> list[dict[str, str]] | None:
    """The maps.csv rows of an image an interrupted run already explained (--resume), or None.

    A finished image made with another method, layer or targets is a usage error."""
    from safetensors import safe_open

    path = tmp / _stem_path("maps", row, ".safetensors")
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="np") as handle:
            metadata = handle.metadata() or {}
            keys = list(handle.keys())
        records = json.loads(metadata["rows"])
    except Exception:  # noqa: BLE001 - a file cut short by the interruption is simply redone
        return None
    wanted = (job.request.method, layer, sorted(job.targets), job.request.figures)
    found = (metadata.get("method"), metadata.get("layer"), sorted(keys), all(r["overlay"] for r in records))
    if found != wanted:
        raise UsageError(
            f"--resume: {partial_path(job.request.out)} was started with method {found[0]}, layer {found[1]}, "
            f"targets {','.join(found[2])}; rerun with the same options, or without --resume to start over"
        )
    return records


def _write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)

"""Scoring every repeat of a training RUN on one split of a dataset."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synthmed.batches import predict_logits
from synthmed.errors import UsageError
from synthmed.evaluate.metrics import METRICS, PER_CLASS, classification_metrics, summarize


@dataclass
class Evaluation:
    report: dict[str, Any]  # metrics.json
    confusion: np.ndarray  # (K, K) counts summed over repeats; rows = true class
    predictions: list[dict[str, Any]]  # one row per image and repeat
    curves: list[dict[str, Any]] = field(default_factory=list)  # per repeat: evaluate.curves.class_curves


def rows_digest(rows: Any) -> str:
    """sha256 over the sorted (id, file digest) pairs of the rows scored: two reports with the
    same digest were made on the same images."""
    import hashlib

    lines = sorted(f"{row['id']}\t{row.get('sha256', '')}" for row in rows)
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def trained_counts(config: dict[str, Any], classes: list[str]) -> dict[str, int] | None:
    """Train images per class the run was trained on (recorded by `train`); runs made before
    that was recorded fall back to the train split of the dataset they name, when it still exists."""
    training = config.get("training", {})
    if training.get("train_counts"):
        return {name: int(training["train_counts"].get(name, 0)) for name in classes}
    from synthmed.data import Dataset

    source = training.get("dataset")
    if not source or not (Path(source) / "dataset.json").is_file():
        return None
    data = Dataset.open(source)
    return {name: len(data.select("train", labels=[name])) for name in classes}


def check_compatible(config: dict[str, Any], dataset: Any, folder: Path) -> None:
    """A model can score a dataset only with the same classes (in order), channels and size."""
    if list(config.get("classes", [])) != dataset.classes:
        raise UsageError(f"{folder}: the model was trained on classes {config.get('classes')}, "
                         f"but {dataset.root} has {dataset.classes}")
    if int(config.get("channels", -1)) != dataset.channels:
        raise UsageError(f"{folder}: the model takes {config.get('channels')}-channel images, "
                         f"{dataset.root} has {dataset.channels}")
    size = dataset.require_uniform_size()
    if list(config.get("image_size", [])) != list(size):
        raise UsageError(f"{folder}: the model takes {config.get('image_size')} px images, {dataset.root} has "
                         f"{list(size)}; run `synthmed preprocess --size N` to match")


def load_run(run: Path | list[Path], dataset: Any) -> list[tuple[Path, Any, dict[str, Any]]]:
    """Every repeat of RUN as (folder, module, config), checked against `dataset` first."""
    from synthmed.checkpoint import load_checkpoint, model_folders, read_config

    folders = model_folders(run)
    for folder in folders:
        check_compatible(read_config(folder, kind="classifier"), dataset, folder)
    return [(folder, *load_checkpoint(folder, kind="classifier")) for folder in folders]


def evaluate_run(run: Path | list[Path], dataset_path: Path, *, split: str = "test", device: Any,
                 batch_size: int = 256) -> Evaluation:
    """Score every repeat of RUN (or of several shard RUNs) on one split of a dataset."""
    from synthmed.data import SPLITS, Dataset

    if split not in SPLITS:
        raise UsageError(f"--split {split!r}: expected one of {', '.join(SPLITS)}")
    if batch_size < 1:
        raise UsageError(f"--batch-size {batch_size}: must be at least 1")
    dataset = Dataset.open(dataset_path)
    rows = dataset.select(split)
    if not rows:
        raise UsageError(f"{dataset.root}: the {split} split is empty; pick another with --split")
    repeats = load_run(run, dataset)
    dataset.check_images(rows)
    from synthmed.batches import pixels_on_device

    images = pixels_on_device(dataset.load_images(rows), "cpu")
    labels = dataset.label_indices(rows)
    num_classes = len(dataset.classes)

    from synthmed.evaluate.curves import class_curves

    per_repeat, curves = [], []
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    predictions: list[dict[str, Any]] = []
    for folder, module, config in repeats:
        module.to(device)
        logits = predict_logits(module, images, config["normalization"], device=device, batch_size=batch_size)
        scores = classification_metrics(logits.cpu().numpy(), labels, num_classes)
        module.cpu()
        per_repeat.append(scores)
        curves.append(class_curves(scores["probabilities"], labels, dataset.classes))
        confusion += scores["confusion"]
        for row, probs in zip(rows, scores["probabilities"]):
            predictions.append({
                "id": row["id"], "file_name": row["file_name"], "label": row["label"],
                "predicted": dataset.classes[int(probs.argmax())], "run": folder.name,
                **{f"p_{name}": round(float(p), 6) for name, p in zip(dataset.classes, probs)},
            })

    report = {
        "split": split,
        "classes": dataset.classes,
        "repeats": len(per_repeat),
        "summary": {metric: summarize([scores[metric] for scores in per_repeat]) for metric in METRICS},
        "per_class": {
            name: {
                **{stat: summarize([scores["per_class"][stat][k] for scores in per_repeat]) for stat in PER_CLASS},
                "auroc": summarize([c[name]["auroc"] if name in c else None for c in curves]),
                "average_precision": summarize([c[name]["average_precision"] if name in c else None for c in curves]),
            }
            for k, name in enumerate(dataset.classes)
        },
        "model": repeats[0][2]["name"],
        "run": str(Path(run).resolve()) if isinstance(run, (str, Path)) else [str(Path(r).resolve()) for r in run],
        "dataset": str(Path(dataset_path).resolve()),
        "images": len(rows),
        "split_digest": rows_digest(rows),
        "support": {name: int((labels == k).sum()) for k, name in enumerate(dataset.classes)},
        # What the run was trained on, not this dataset's train split (a mix differs from it).
        "train_support": trained_counts(repeats[0][2], dataset.classes),
    }
    return Evaluation(report, confusion, predictions, curves)

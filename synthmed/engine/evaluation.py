"""Evaluating trained classifiers: `evaluate_run` is what `synthmed evaluate` calls.

Metric arithmetic is scikit-learn's. A RUN with repeats is scored once per repeat, and every
metric is reported as the median and interquartile range over the repeats (the MRI thesis
reported the median of 20 runs), in the `metrics.json` layout of BRIEF contract 2.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from synthmed.errors import UsageError

METRICS = ("cross_entropy", "accuracy", "balanced_accuracy", "macro_precision", "macro_recall", "macro_f1",
           "auroc_macro")
PER_CLASS = ("precision", "recall", "f1")
LOWER_IS_BETTER = {"cross_entropy"}


def predict_logits(model: Any, images: Any, normalization: dict[str, Sequence[float]], *, device: Any,
                   batch_size: int = 256, amp_dtype: Any = None) -> Any:
    """Float32 logits (N, K) on `device` for stored uint8 images (N, C, H, W), in eval mode."""
    import torch

    from synthmed.engine.batches import model_input

    model.eval()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = model_input(images[start : start + batch_size], normalization, device=device)
            with torch.autocast(torch.device(device).type, dtype=amp_dtype or torch.float32,
                                enabled=amp_dtype is not None):
                outputs.append(model(x).float())
    return torch.cat(outputs)


def summarize(values: Sequence[float | None]) -> dict[str, Any]:
    """Median and quartiles over repeats (None for a metric that is undefined in every repeat)."""
    defined = [v for v in values if v is not None]
    if not defined:
        return {"median": None, "q1": None, "q3": None, "values": list(values)}
    q1, median, q3 = np.percentile(defined, [25, 50, 75])
    return {"median": float(median), "q1": float(q1), "q3": float(q3), "values": list(values)}


def classification_metrics(logits: np.ndarray, labels: np.ndarray, num_classes: int) -> dict[str, Any]:
    """One repeat's metrics: the METRICS scalars, per-class precision/recall/F1 and the confusion matrix.

    Macro averages run over the classes present in `labels` (a class absent from the split has
    no recall to average); a class never predicted has precision 0. AUROC is one-vs-rest per
    class, macro-averaged over the classes it is defined for (None when none)."""
    import torch
    from sklearn.metrics import (accuracy_score, balanced_accuracy_score, confusion_matrix,
                                 precision_recall_fscore_support, roc_auc_score)

    logits_t = torch.from_numpy(logits).float()
    labels_t = torch.from_numpy(labels).long()
    probabilities = torch.softmax(logits_t, dim=1).numpy()
    predicted = probabilities.argmax(1)
    every = list(range(num_classes))
    present = sorted(set(labels.tolist()))
    precision, recall, f1, _ = precision_recall_fscore_support(labels, predicted, labels=every, zero_division=0)
    aurocs = []
    for k in present:
        positive = labels == k
        if 0 < positive.sum() < len(labels):
            aurocs.append(roc_auc_score(positive, probabilities[:, k]))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true": handled by `present`
        balanced = balanced_accuracy_score(labels, predicted)
    return {
        "cross_entropy": float(torch.nn.functional.cross_entropy(logits_t, labels_t)),
        "accuracy": float(accuracy_score(labels, predicted)),
        "balanced_accuracy": float(balanced),
        "macro_precision": float(np.mean(precision[present])),
        "macro_recall": float(np.mean(recall[present])),
        "macro_f1": float(np.mean(f1[present])),
        "auroc_macro": float(np.mean(aurocs)) if aurocs else None,
        "per_class": {"precision": precision.tolist(), "recall": recall.tolist(), "f1": f1.tolist()},
        "confusion": confusion_matrix(labels, predicted, labels=every),
        "probabilities": probabilities,
    }


# --------------------------------------------------------------------------- a RUN on a dataset


@dataclass
class Evaluation:
    report: dict[str, Any]  # metrics.json
    confusion: np.ndarray  # (K, K) counts summed over repeats; rows = true class
    predictions: list[dict[str, Any]]  # one row per image and repeat


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


def load_run(run: Path, dataset: Any) -> list[tuple[Path, Any, dict[str, Any]]]:
    """Every repeat of RUN as (folder, module, config), checked against `dataset` first."""
    from synthmed.checkpoint import load_weights, model_folders, read_config
    from synthmed.registry import get_entry

    folders = model_folders(Path(run))
    configs = [read_config(folder, kind="classifier") for folder in folders]
    for folder, config in zip(folders, configs):
        check_compatible(config, dataset, folder)
    loaded = []
    for folder, config in zip(folders, configs):
        entry = get_entry("classifier", config["name"])
        module = entry.factory(**config.get("args", {}))
        load_weights(module, folder)
        module.eval()
        loaded.append((folder, module, config))
    return loaded


def evaluate_run(run: Path, dataset_path: Path, *, split: str = "test", device: Any,
                 batch_size: int = 256) -> Evaluation:
    """Score every repeat of RUN on one split of a dataset."""
    import torch

    from synthmed.dataset import SPLITS, Dataset

    if split not in SPLITS:
        raise UsageError(f"--split {split!r}: expected one of {', '.join(SPLITS)}")
    dataset = Dataset.open(dataset_path)
    rows = dataset.select(split)
    if not rows:
        raise UsageError(f"{dataset.root}: the {split} split is empty; pick another with --split")
    repeats = load_run(run, dataset)
    images = torch.from_numpy(dataset.load_images(rows))
    if images.dtype != torch.uint8:
        images = images.to(torch.int32)
    labels = dataset.label_indices(rows)
    num_classes = len(dataset.classes)

    per_repeat = []
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    predictions: list[dict[str, Any]] = []
    for folder, module, config in repeats:
        module.to(device)
        logits = predict_logits(module, images, config["normalization"], device=device, batch_size=batch_size)
        scores = classification_metrics(logits.cpu().numpy(), labels, num_classes)
        module.cpu()
        per_repeat.append(scores)
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
            name: {stat: summarize([scores["per_class"][stat][k] for scores in per_repeat]) for stat in PER_CLASS}
            for k, name in enumerate(dataset.classes)
        },
        "model": repeats[0][2]["name"],
        "run": str(Path(run).resolve()),
        "dataset": str(Path(dataset_path).resolve()),
        "images": len(rows),
        "support": {name: int((labels == k).sum()) for k, name in enumerate(dataset.classes)},
        "train_support": {name: len(dataset.select("train", labels=[name])) for name in dataset.classes},
    }
    return Evaluation(report, confusion, predictions)


# --------------------------------------------------------------------------- writing a report


def write_report(folder: Path, evaluation: Evaluation) -> None:
    """metrics.json, confusion_matrix.csv/.png and predictions.csv into `folder`."""
    report = evaluation.report
    classes = report["classes"]
    (folder / "metrics.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    with open(folder / "confusion_matrix.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["true \\ predicted", *classes])
        for name, counts in zip(classes, evaluation.confusion):
            writer.writerow([name, *map(int, counts)])
    with open(folder / "predictions.csv", "w", newline="", encoding="utf-8") as handle:
        columns = list(evaluation.predictions[0])
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(evaluation.predictions)
    plot_confusion(folder / "confusion_matrix.png", evaluation.confusion, classes, report["repeats"])


def plot_confusion(path: Path, confusion: np.ndarray, classes: Sequence[str], repeats: int) -> None:
    """Heat map of the row-normalised confusion matrix, annotated with the counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    side = 1.2 + 0.8 * len(classes)
    fig, ax = plt.subplots(figsize=(side + 1.5, side))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, str(int(confusion[i, j])), ha="center", va="center",
                    color="white" if rates[i, j] > 0.5 else "black")
    title = "confusion matrix" + (f" (summed over {repeats} repeats)" if repeats > 1 else "")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="fraction of true class")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --------------------------------------------------------------------------- comparing reports


def format_stat(stat: dict[str, Any]) -> str:
    """'0.812 [0.790, 0.830]' (median [q1, q3]); a single repeat shows just the value."""
    if stat["median"] is None:
        return "n/a"
    if len(stat["values"]) == 1:
        return f"{stat['median']:.3f}"
    return f"{stat['median']:.3f} [{stat['q1']:.3f}, {stat['q3']:.3f}]"


def read_report(path: Path) -> dict[str, Any]:
    """metrics.json of a REPORT folder (or the file itself)."""
    path = Path(path)
    file = path / "metrics.json" if path.is_dir() else path
    if not file.is_file():
        raise UsageError(f"{path}: not an evaluation report (no metrics.json); make one with `synthmed evaluate`")
    try:
        report = json.loads(file.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UsageError(f"{file}: not valid JSON ({exc})") from None
    if not isinstance(report, dict) or "summary" not in report:
        raise UsageError(f"{file}: not a synthmed evaluation report (no 'summary')")
    return report


def compare_reports(paths: Sequence[Path], metrics: Sequence[str] = METRICS,
                    minority: bool = True) -> tuple[list[str], list[list[str]]]:
    """A table comparing evaluation reports: (header, rows), one row per report, cells
    'median [q1, q3]'. With `minority`, adds the F1 of the minority class (fewest train images,
    then fewest evaluated images, in the first report's dataset)."""
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise UsageError(f"--metric {unknown[0]!r}: expected one of {', '.join(METRICS)}")
    reports = [read_report(path) for path in paths]
    header = ["report", "model", "repeats", *metrics]
    smallest = None
    if minority and reports and all(r.get("support") for r in reports):
        support, train_support = reports[0]["support"], reports[0].get("train_support", {})
        smallest = min(support, key=lambda name: (train_support.get(name, 0), support[name]))
        header.append(f"f1 {smallest}")
    rows = []
    for path, report in zip(paths, reports):
        row = [Path(path).name, str(report.get("model", "")), str(report.get("repeats", ""))]
        row += [format_stat(report["summary"][m]) if m in report["summary"] else "n/a" for m in metrics]
        if smallest is not None:
            stat = report.get("per_class", {}).get(smallest, {}).get("f1")
            row.append(format_stat(stat) if stat else "n/a")
        rows.append(row)
    return header, rows

"""Writing an evaluation report (metrics.json, confusion matrix, ROC/PR curves, predictions) and reading one back."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from synthmed.errors import UsageError
from synthmed.evaluate.scoring import Evaluation
from synthmed.jsonio import read_json, write_json


def write_report(folder: Path, evaluation: Evaluation) -> None:
    """metrics.json, confusion_matrix.csv/.png and predictions.csv into `folder`."""
    report = evaluation.report
    classes = report["classes"]
    write_json(folder / "metrics.json", report)
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
    from synthmed.evaluate.curves import plot_curves

    repeats = report["repeats"]
    spread = f", median of {repeats} repeats, band: IQR" if repeats > 1 else ""
    plot_curves(folder / "roc_pr.png", evaluation.curves, classes, report["support"],
                f"{report['model']} on {report['split']} ({report['images']} images{spread})")


def plot_confusion(path: Path, confusion: np.ndarray, classes: Sequence[str], repeats: int) -> Path:
    """Heat map of the row-normalised confusion matrix, annotated with the counts."""
    from synthmed import figures

    rates = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    side = 1.2 + 0.8 * len(classes)
    fig, ax = figures.figure(width=side + 1.5, height=side)
    figures.heatmap(ax, rates, rows=classes, columns=classes, text=confusion.astype(int),
                    colorbar="fraction of true class")
    ax.set(xlabel="predicted", ylabel="true")
    ax.set_title("confusion matrix" + (f" (summed over {repeats} repeats)" if repeats > 1 else ""))
    return figures.save(fig, path)


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
    report = read_json(file, what="an evaluation report", where=str(path), hint="make one with `synthmed evaluate`")
    if "summary" not in report:
        raise UsageError(f"{file}: not a synthmed evaluation report (no 'summary')")
    return report

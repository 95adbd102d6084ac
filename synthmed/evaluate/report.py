"""Writing an evaluation report (metrics.json, confusion matrix, predictions) and comparing reports."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from synthmed.errors import UsageError
from synthmed.evaluate.metrics import METRICS
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

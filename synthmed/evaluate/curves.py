"""ROC and precision-recall curves per class (one-vs-rest), on fixed grids so that repeats
can be summarised point by point, and their figure (median over repeats, IQR band).

scikit-learn gives each repeat's curve at its own thresholds; reading every curve at the same
false-positive rates (ROC) and recalls (PR) is what makes a median over repeats meaningful.
PR curves use the interpolated precision (the best precision at this recall or above), the
usual way to draw them without the saw-tooth of raw thresholds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

GRID = np.linspace(0.0, 1.0, 101)


def class_curves(probabilities: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> dict[str, dict[str, Any]]:
    """{class: {"tpr": TPR at GRID false-positive rates, "precision": precision at GRID recalls,
    "auroc", "average_precision"}} for every class with both positive and negative images."""
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

    curves: dict[str, dict[str, Any]] = {}
    for k, name in enumerate(classes):
        positive = labels == k
        if not 0 < positive.sum() < len(labels):
            continue
        scores = probabilities[:, k]
        fpr, tpr, _ = roc_curve(positive, scores)
        precision, recall, _ = precision_recall_curve(positive, scores)
        # recall decreases along sklearn's output; the running maximum from the high-recall
        # end is the interpolated precision, then read at the grid's recalls.
        order = np.argsort(recall, kind="stable")
        recall, precision = recall[order], np.maximum.accumulate(precision[order][::-1])[::-1]
        curves[name] = {
            "tpr": np.interp(GRID, fpr, tpr).tolist(),
            "precision": np.interp(GRID, recall, precision).tolist(),
            "auroc": float(auc(fpr, tpr)),
            "average_precision": float(average_precision_score(positive, scores)),
        }
    return curves


def plot_curves(path: Path, per_repeat: Sequence[dict[str, dict[str, Any]]], classes: Sequence[str],
                support: dict[str, int], title: str) -> Path:
    """roc_pr.png: ROC (left) and precision-recall (right) per class, median over repeats with
    the interquartile range as a band; the legend gives each class's median AUROC / AP."""
    from synthmed import figures

    fig, (roc, pr) = figures.figure(ncols=2, width=10, height=4.2)
    for name, colour in zip(classes, figures.colours(len(classes))):
        runs = [curves[name] for curves in per_repeat if name in curves]
        if not runs:
            continue
        area = np.median([r["auroc"] for r in runs])
        ap = np.median([r["average_precision"] for r in runs])
        figures.median_band(roc, GRID, [r["tpr"] for r in runs], label=f"{name} (AUC {area:.2f})", color=colour,
                            count_in_label=False)
        figures.median_band(pr, GRID, [r["precision"] for r in runs], label=f"{name} (AP {ap:.2f})", color=colour,
                            count_in_label=False)
        # Chance level of a class's PR curve is its share of the split.
        share = support.get(name, 0) / max(sum(support.values()), 1)
        pr.axhline(share, color=colour, linestyle=":", linewidth=0.8)
    roc.plot([0, 1], [0, 1], color="#888888", linestyle="--", linewidth=0.8)
    roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (one vs rest)", xlim=(0, 1),
            ylim=(0, 1.02))
    pr.set(xlabel="recall", ylabel="precision", title="precision-recall (dotted: chance)", xlim=(0, 1),
           ylim=(0, 1.02))
    for ax in (roc, pr):
        ax.legend(loc="lower right" if ax is roc else "lower left")
    fig.suptitle(title)
    return figures.save(fig, path)

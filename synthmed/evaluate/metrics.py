"""Classification metrics of one set of predictions, and their summary over repeats."""

from __future__ import annotations

from typing import Any

import numpy as np

from synthmed.stats import summarize  # noqa: F401 - the summary every report uses

METRICS = ("cross_entropy", "accuracy", "balanced_accuracy", "macro_precision", "macro_recall", "macro_f1",
           "auroc_macro", "ece")
PER_CLASS = ("precision", "recall", "f1")
LOWER_IS_BETTER = {"cross_entropy", "ece"}
ECE_BINS = 15  # equal-width confidence bins, the usual choice (Guo et al. 2017)


def classification_metrics(logits: np.ndarray, labels: np.ndarray, num_classes: int) -> dict[str, Any]:
    """One repeat's metrics: the METRICS scalars, per-class precision/recall/F1 and the confusion matrix.

    Macro averages run over the classes present in `labels` (a class absent from the split has
    no recall to average); a class never predicted has precision 0. AUROC is one-vs-rest per
    class, macro-averaged over the classes it is defined for (None when none). `ece` is the
    expected calibration error of the top-class confidence (ECE_BINS bins): beside the
    cross-entropy it tells calmer confidence apart from better ranking."""
    import torch
    from torchmetrics.functional.classification import multiclass_calibration_error
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        confusion_matrix,
        precision_recall_fscore_support,
        roc_auc_score,
    )

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
        "ece": float(multiclass_calibration_error(torch.from_numpy(probabilities), labels_t, num_classes=num_classes,
                                                  n_bins=ECE_BINS, norm="l1")),
        "per_class": {"precision": precision.tolist(), "recall": recall.tolist(), "f1": f1.tolist()},
        "confusion": confusion_matrix(labels, predicted, labels=every),
        "probabilities": probabilities,
    }

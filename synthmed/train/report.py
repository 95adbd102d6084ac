"""Per-run outputs: history.csv and the training curves."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

from synthmed.train.settings import HISTORY_COLUMNS


def write_history(folder: Path, history: Sequence[dict[str, float]]) -> None:
    with open(folder / "history.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for record in history:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in record.items()})


def plot_curves(folder: Path, history: Sequence[dict[str, float]], best_epoch: int, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, metric in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        ax.plot(epochs, [r[f"train_{metric}"] for r in history], marker="o", label="train")
        ax.plot(epochs, [r[f"val_{metric}"] for r in history], marker="o", label="val")
        ax.axvline(best_epoch, color="gray", linestyle=":", label=f"best epoch {best_epoch}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(folder / "curves.png", dpi=100)
    plt.close(fig)

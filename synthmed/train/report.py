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


def plot_curves(folder: Path, history: Sequence[dict[str, float]], best_epoch: int, title: str) -> Path:
    """curves.png of one repeat: loss and accuracy per epoch, train and val, best epoch marked."""
    from synthmed import figures

    epochs = [r["epoch"] for r in history]
    fig, (loss_ax, acc_ax) = figures.figure(ncols=2, width=9, height=3.5)
    for ax, metric in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        ax.plot(epochs, [r[f"train_{metric}"] for r in history], marker="o", label="train")
        ax.plot(epochs, [r[f"val_{metric}"] for r in history], marker="o", label="val")
        ax.axvline(best_epoch, color="gray", linestyle=":", label=f"best epoch {best_epoch}")
        ax.set(xlabel="epoch", ylabel=metric)
        figures.integer_ticks(ax)
        ax.legend()
    fig.suptitle(title)
    return figures.save(fig, folder / "curves.png")


def read_history(folder: Path) -> list[dict[str, float]]:
    with open(folder / "history.csv", newline="", encoding="utf-8") as handle:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(handle)]


def plot_run_curves(run: Path, repeat_folders: Sequence[Path], title: str) -> Path:
    """RUN/curves.png over every repeat: per epoch the median train and val loss and accuracy
    with the interquartile range as a band, and each repeat's best epoch as a tick on the axis
    (repeats that stopped early simply leave the later epochs)."""
    from synthmed import figures

    histories = [read_history(folder) for folder in repeat_folders]
    epochs = list(range(1, max(len(h) for h in histories) + 1))
    best = [min(h, key=lambda r: r["val_loss"])["epoch"] for h in histories]
    fig, (loss_ax, acc_ax) = figures.figure(ncols=2, width=9, height=3.5)
    for ax, metric in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        for part, style in (("train", "-"), ("val", "--")):
            figures.median_band(ax, epochs, [[r[f"{part}_{metric}"] for r in h] for h in histories],
                                label=part, count_in_label=False, linestyle=style, marker="o", markersize=3)
        ax.plot(best, [ax.get_ylim()[0]] * len(best), "|", color="#000000", markersize=10,
                label="best epochs")
        ax.set(xlabel="epoch", ylabel=metric)
        figures.integer_ticks(ax)
        ax.legend()
    fig.suptitle(f"{title} (median of {len(histories)} repeats, band: IQR)")
    return figures.save(fig, run / "curves.png")

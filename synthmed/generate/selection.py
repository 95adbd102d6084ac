"""Keeping the best checkpoint of a fit (`generate --select-by fid`) and the fit history.

`FitCheck` is the one hook `FittedGenerator.fit` calls: every `every` epochs it scores the
generator as it would sample now (lower is better), keeps a copy of the best sampling weights
and tells the fit to stop after `patience` checks without improvement. Its state rides in
the fit checkpoint, so `--resume` continues a selection exactly.

`fid_score` is the score of `--select-by fid`: the feature-space FID between a fixed-seed
batch per class and the real val images. Val, not test: the test split stays untouched for
the final evaluation. Fixed seeds: every check draws the same noise, so two checks differ
only by the weights.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from synthmed.errors import UsageError
from synthmed.seeding import derive_seed

SELECT_BY = ("fid",)
DEFAULT_CHECK_EVERY = 5  # epochs between checks
DEFAULT_PATIENCE = 3  # checks without a lower FID before the fit stops
CHECK_PER_CLASS = 32  # images per class a check samples and compares (at most the class's val images)
HISTORY_FILE = "history.csv"
HISTORY_PLOT = "history.png"


@dataclass
class FitCheck:
    """Best-checkpoint selection. `score(generator)` is called with the generator's sampling
    network in place (`FittedGenerator.fit` prepares it as the end of a fit would)."""

    score: Callable[[Any], float]
    every: int = DEFAULT_CHECK_EVERY
    patience: int = DEFAULT_PATIENCE
    scores: dict[int, float] = field(default_factory=dict)  # epoch -> score
    best_epoch: int | None = None
    since_best: int = 0  # checks since the best one
    best_weights: dict[str, Any] | None = None  # the sampling network's state at best_epoch (CPU)

    def due(self, epoch: int) -> bool:
        return epoch % self.every == 0

    def __call__(self, epoch: int, generator: Any) -> bool:
        """Score the generator after `epoch` epochs; True when the fit should stop."""
        score = float(self.score(generator))
        self.scores[epoch] = score
        if self.best_epoch is None or score < self.scores[self.best_epoch]:
            self.best_epoch, self.since_best = epoch, 0
            self.best_weights = {k: v.detach().cpu().clone() for k, v in generator.net.state_dict().items()}
        else:
            self.since_best += 1
        return self.since_best >= self.patience

    # ---- fit checkpoints

    def state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(JSON meta, tensors) for the fit checkpoint."""
        meta = {"scores": {str(k): v for k, v in self.scores.items()}, "best_epoch": self.best_epoch,
                "since_best": self.since_best}
        return meta, {f"best/{k}": v for k, v in (self.best_weights or {}).items()}

    def restore(self, meta: dict[str, Any] | None, tensors: dict[str, Any]) -> None:
        meta = meta or {}
        self.scores = {int(k): float(v) for k, v in (meta.get("scores") or {}).items()}
        self.best_epoch, self.since_best = meta.get("best_epoch"), int(meta.get("since_best", 0))
        best = {k[len("best/"):]: v for k, v in tensors.items() if k.startswith("best/")}
        self.best_weights = best or None


def check_selection(select_by: str | None, check_every: int | None, patience: int | None) -> None:
    """The option values alone (the dataset is checked by `fid_score`)."""
    if select_by is None:
        for option, value in (("--check-every", check_every), ("--patience", patience)):
            if value is not None:
                raise UsageError(f"{option} paces best-checkpoint selection; add --select-by fid")
        return
    if select_by not in SELECT_BY:
        raise UsageError(f"--select-by {select_by!r}: choose one of {', '.join(SELECT_BY)}")
    for option, value in (("--check-every", check_every), ("--patience", patience)):
        if value is not None and value < 1:
            raise UsageError(f"{option} must be at least 1 (got {value})")


def val_rows(dataset: Any, classes: Sequence[str]) -> dict[str, list]:
    """The real val rows a check compares against, per class (the first CHECK_PER_CLASS in
    dataset order); a fitted class without any is a usage error."""
    chosen = {}
    for label in classes:
        rows = dataset.select(split="val", source="real", labels=[label])
        if not rows:
            raise UsageError(f"--select-by fid compares samples with the real val images, but class {label!r} has "
                             f"none in {dataset.root}; split the data with a val share, or drop --select-by")
        chosen[label] = rows[:CHECK_PER_CLASS]
    return chosen


def fid_score(dataset: Any, classes: Sequence[str], encoder: Any, *, seed: int, device: Any) -> Callable[[Any], float]:
    """The score of `--select-by fid`: FID (torchmetrics, in `encoder`'s feature space) between
    the real val images and as many generated images per class, drawn from the same seeds at
    every check, so that both sets have the same class mix."""
    from synthmed.quality.features import embed
    from synthmed.quality.measures import fid_kid

    chosen = val_rows(dataset, classes)
    real = embed(encoder, np.concatenate([dataset.load_images(rows) for rows in chosen.values()]), device=device)
    seeds = {label: [derive_seed(seed, "select", label, i) for i in range(len(rows))] for label, rows in chosen.items()}

    def score(generator: Any) -> float:
        images = [generator.sample_seeds(dataset.classes.index(label), seeds[label], device=device) for label in chosen]
        fid = fid_kid(real, embed(encoder, np.concatenate(images), device=device))["fid"]
        return float("inf") if fid is None else fid

    return score


# ---- the fit history


def history_rows(history: Sequence[dict[str, Any]], scores: dict[int, float], saved_epoch: int | None
                 ) -> tuple[list[str], list[dict[str, Any]]]:
    """(columns, rows) of history.csv: epoch, steps, the mean of each loss over the epoch, the
    score where checked, and `best` = 1 on the epoch whose weights the model folder holds."""
    losses = sorted({name for row in history for name in row.get("losses", {})})
    columns = ["epoch", "steps", *(name if name.startswith("loss") else f"loss_{name}" for name in losses), "fid", "best"]
    rows = []
    for row in history:
        epoch = int(row["epoch"])
        values = [row.get("losses", {}).get(name) for name in losses]
        fid = scores.get(epoch)
        rows.append(dict(zip(columns, [epoch, int(row["steps"]), *values, fid, int(epoch == saved_epoch)])))
    return columns, rows


def write_history(folder: Path, history: Sequence[dict[str, Any]], scores: dict[int, float],
                  saved_epoch: int | None) -> None:
    """history.csv and history.png (losses per epoch; FID per check, best marked) into `folder`."""
    from synthmed.figures import figure, integer_ticks, save

    columns, rows = history_rows(history, scores, saved_epoch)
    with open(Path(folder) / HISTORY_FILE, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: "" if v is None else (f"{v:.6g}" if isinstance(v, float) else v)
                          for k, v in row.items()} for row in rows)
    checked = [row for row in rows if row["fid"] is not None]
    fig, axes = figure(ncols=2 if checked else 1, width=9 if checked else 5, height=3.2, squeeze=False)
    ax = axes[0][0]
    epochs = [row["epoch"] for row in rows]
    for name in columns[2:-2]:
        ax.plot(epochs, [row[name] for row in rows], label=name)
    ax.set(xlabel="epoch", ylabel="mean loss over the epoch", title="losses")
    if len(columns) > 4:
        ax.legend()
    integer_ticks(ax)
    if checked:
        ax = axes[0][1]
        ax.plot([row["epoch"] for row in checked], [row["fid"] for row in checked], marker="o", label="FID (val)")
        best = [row for row in checked if row["best"]]
        if best:
            ax.plot([best[0]["epoch"]], [best[0]["fid"]], marker="*", markersize=12, linestyle="none", label="kept")
        ax.set(xlabel="epoch", ylabel="FID against the real val images", title="checks")
        ax.legend()
        integer_ticks(ax)
    save(fig, Path(folder) / HISTORY_PLOT)

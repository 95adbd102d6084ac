"""Figures of a study (the house style of synthmed.figures), one set per (classifier, augment)
group: the primary metric per cell as a box and strip plot with each scenario's controls beside
it, per-class F1 bars, and the validation-loss curves combined over repeats."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")


def _groups(context: Any) -> dict[tuple[str, str], list[str]]:
    """Cells per group, each scenario followed by its controls."""
    grid = context.grid
    groups: dict[tuple[str, str], list[str]] = {}
    for scenario in grid.scenarios:
        cell = grid.cells[scenario]
        members = groups.setdefault((cell.classifier, cell.augment), [])
        for cell_id in [scenario, *grid.controls.get(scenario, {}).values()]:
            if cell_id not in members:
                members.append(cell_id)
    return groups


def draw_figures(context: Any, records: dict[str, list[dict]], folder: Path) -> list[Path]:
    import numpy as np

    from synthmed.figures import PALETTE, box_strip, figure, median_band, save
    from synthmed.study.report import minority_classes, values_of

    study, grid = context.study, context.grid
    classes = list(context.real_counts)
    minority = minority_classes(context)
    paths = []
    for (classifier, augment), members in _groups(context).items():
        tag = _slug(f"{classifier}-{augment}")
        labels = [grid.cells[c].label() for c in members]
        width = max(6.0, 1.1 * len(members) + 2)

        fig, ax = figure(width=width, height=4.5)
        box_strip(ax, {label: values_of(records[c], study.primary, study.split) for label, c in zip(labels, members)},
                  ylabel=f"{study.primary} ({study.split})", seed=study.seed)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_title(f"{classifier}, {augment}: {study.primary} per repeat")
        paths.append(save(fig, folder / f"{_slug(study.primary)}-{tag}.png"))

        fig, ax = figure(width=width, height=4)
        bar = 0.8 / len(members)
        for i, cell_id in enumerate(members):
            medians = []
            for name in classes:
                values = [v for v in values_of(records[cell_id], f"f1[{name}]", study.split) if v is not None]
                medians.append(float(np.median(values)) if values else 0.0)
            ax.bar(np.arange(len(classes)) + i * bar, medians, bar, label=labels[i], color=PALETTE[i % len(PALETTE)])
        ax.set_xticks(np.arange(len(classes)) + 0.4 - bar / 2, [f"{c} *" if c in minority else c for c in classes])
        ax.set_ylabel(f"median F1 ({study.split})")
        ax.set_ylim(0, 1)
        ax.set_title(f"{classifier}, augment {augment}: per-class F1 (* minority classes)")
        ax.legend(fontsize=6, loc="upper right")
        paths.append(save(fig, folder / f"per-class-f1-{tag}.png"))

        fig, ax = figure(width=7, height=4)
        for i, (cell_id, label) in enumerate(zip(members, labels)):
            histories = [r["history"] for r in records[cell_id]]
            longest = max(len(h) for h in histories)
            median_band(ax, list(range(1, longest + 1)), [[row["val_loss"] for row in h] for h in histories],
                        label=label, color=PALETTE[i % len(PALETTE)])
        ax.set_xlabel("epoch")
        ax.set_ylabel("val loss")
        ax.set_title(f"{classifier}, augment {augment}: training curves (median, quartiles over repeats)")
        ax.legend(fontsize=6)
        paths.append(save(fig, folder / f"curves-{tag}.png"))
    return paths

"""Figures of a study (matplotlib), one set per (classifier, augment) group: the primary metric
per cell as a box and strip plot with each scenario's controls beside it, per-class F1 bars,
and the validation-loss curves combined over repeats (median and quartiles per epoch)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROLE_COLOURS = {"scenario": "tab:blue", "selective": "tab:purple", "probe": "tab:cyan", "without": "tab:gray",
                "oversample": "tab:orange", "reference": "tab:green", "steps": "tab:brown"}


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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from synthmed.study.report import minority_classes, values_of

    study, grid = context.study, context.grid
    paths = []
    for (classifier, augment), members in _groups(context).items():
        tag = _slug(f"{classifier}-{augment}")
        labels = [grid.cells[c].label() for c in members]
        colours = [ROLE_COLOURS.get(grid.cells[c].role, "tab:blue") for c in members]
        width = max(6.0, 0.9 * len(members) + 2)

        fig, ax = plt.subplots(figsize=(width, 4.5))
        data = [[v for v in values_of(records[c], study.primary, study.split) if v is not None] for c in members]
        ax.boxplot(data, positions=range(len(members)), widths=0.5, showfliers=False)
        jitter = np.random.default_rng(study.seed)
        for x, (values, colour) in enumerate(zip(data, colours)):
            ax.scatter(x + jitter.uniform(-0.12, 0.12, len(values)), values, color=colour, s=18, zorder=3)
        ax.set_xticks(range(len(members)), labels, rotation=30, ha="right", fontsize=7)
        ax.set_ylabel(f"{study.primary} ({study.split})")
        ax.set_title(f"{classifier}, augment {augment}: {study.primary} per repeat")
        fig.tight_layout()
        paths.append(folder / f"{_slug(study.primary)}-{tag}.png")
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)

        classes = list(context.real_counts)
        fig, ax = plt.subplots(figsize=(width, 4))
        bar = 0.8 / max(len(members), 1)
        for i, (cell_id, colour) in enumerate(zip(members, colours)):
            medians = []
            for name in classes:
                values = [v for v in values_of(records[cell_id], f"f1[{name}]", study.split) if v is not None]
                medians.append(float(np.median(values)) if values else 0.0)
            ax.bar(np.arange(len(classes)) + i * bar, medians, bar, label=labels[i], color=colour,
                   alpha=0.35 + 0.65 * (i + 1) / len(members))
        minority = minority_classes(context)
        ax.set_xticks(np.arange(len(classes)) + 0.4 - bar / 2,
                      [f"{c} *" if c in minority else c for c in classes], fontsize=8)
        ax.set_ylabel(f"median F1 ({study.split})")
        ax.set_ylim(0, 1)
        ax.set_title(f"{classifier}, augment {augment}: per-class F1 (* minority)")
        ax.legend(fontsize=6, loc="upper right")
        fig.tight_layout()
        paths.append(folder / f"per-class-f1-{tag}.png")
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)

        fig, ax = plt.subplots(figsize=(7, 4))
        for cell_id, label, colour in zip(members, labels, colours):
            histories = [r["history"] for r in records[cell_id]]
            longest = max(len(h) for h in histories)
            epochs = np.arange(1, longest + 1)
            table = np.full((len(histories), longest), np.nan)
            for k, history in enumerate(histories):
                table[k, : len(history)] = [row["val_loss"] for row in history]
            counts = (~np.isnan(table)).sum(axis=0)
            keep = counts >= max(1, len(histories) // 2)  # epochs most repeats reached
            q1, median, q3 = np.nanpercentile(table[:, keep], [25, 50, 75], axis=0)
            ax.plot(epochs[keep], median, color=colour, label=label)
            ax.fill_between(epochs[keep], q1, q3, color=colour, alpha=0.15)
        ax.set_xlabel("epoch")
        ax.set_ylabel("val loss (median, quartiles over repeats)")
        ax.set_title(f"{classifier}, augment {augment}: training curves")
        ax.legend(fontsize=6)
        fig.tight_layout()
        paths.append(folder / f"curves-{tag}.png")
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
    return paths

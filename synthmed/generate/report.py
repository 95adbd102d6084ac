"""The quality report of generated images: quality.json (the layout of synthmed.quality) and a
contact sheet per class, with label fidelity when a judge classifier is given."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from synthmed.data import Dataset, Row
from synthmed.errors import UsageError
from synthmed.generate.plan import QUALITY_FILE, SHEETS_FOLDER
from synthmed.jsonio import write_json


@dataclass
class Judge:
    module: Any
    config: dict[str, Any]
    path: Path


def load_judge(run: Path, dataset: Dataset) -> Judge:
    """`--judge RUN`: a classifier from `synthmed train`, trained on this dataset's class list."""
    from synthmed.checkpoint import load_classifier

    module, config = load_classifier(Path(run))
    if config.get("classes") != dataset.classes:
        raise UsageError(f"--judge {run}: trained on classes {config.get('classes')}, not {dataset.classes}")
    if config.get("channels", dataset.channels) != dataset.channels:
        raise UsageError(f"--judge {run}: takes {config.get('channels')} channel(s), the dataset has {dataset.channels}")
    return Judge(module, config, Path(run))


def feature_space(dataset: Dataset, judge: Judge | None, *, device: Any, notes: list[str]) -> tuple[Any, str]:
    """(encoder, description): the judge's penultimate layer with --judge, else the dataset's
    cached domain encoder (fitted on first use; `notes` gets a line when a stale cache is refitted)."""
    from synthmed.quality.features import JudgeFeatures, encoder_for

    if judge is not None:
        return JudgeFeatures(judge.module, judge.config), f"penultimate layer of the judge {judge.path}"
    encoder = encoder_for(dataset, device=device, warn=notes.append)
    return encoder, "domain encoder fitted on the real train split"


def write_quality(folder: Path, dataset: Dataset, rows: Sequence[Row], *, judge: Judge | None, copy_threshold: float,
                  device: Any, strict: bool = False) -> dict[str, Any]:
    """quality.json and one labelled contact sheet per class (synthetic above real) into
    `folder`. `strict`: a class whose verdict is not ok is an error (exit 1), raised before
    anything is written, so the output folder is never finished."""
    from synthmed.data.imageio import decode_png, to_chw
    from synthmed.errors import SynthmedError
    from synthmed.figures import save
    from synthmed.quality import contact_sheet, quality_report

    by_label: dict[str, list[Row]] = {}
    for row in rows:
        by_label.setdefault(row["label"], []).append(row)
    synthetic = {label: np.stack([to_chw(decode_png(folder / r["file_name"])) for r in group])
                 for label, group in by_label.items()}
    real = {label: dataset.load_images(dataset.select(split="train", source="real", labels=[label]))
            for label in dataset.classes}
    notes: list[str] = []
    encoder, space = feature_space(dataset, judge, device=device, notes=notes)
    report = quality_report(synthetic, real, classes=dataset.classes, judge=judge.module if judge else None,
                            judge_config=judge.config if judge else None, encoder=encoder, feature_space=space,
                            copy_threshold=copy_threshold, device=device)
    report["judge"] = str(judge.path) if judge else None
    report["warnings"] = notes + report["warnings"] + verdict_warnings(report)
    if strict and report["not_ok"]:
        raise SynthmedError("--strict-quality: " + "; ".join(verdict_warnings(report)) + "; nothing written")
    sheets = folder / SHEETS_FOLDER
    sheets.mkdir(exist_ok=True)
    for label, images in synthetic.items():
        save(contact_sheet(images, real[label], label=label, verdict=report["classes"][label]["verdict"]),
             sheets / f"{label}.png")
    write_json(folder / QUALITY_FILE, report)
    return report


def verdict_warnings(report: dict[str, Any]) -> list[str]:
    """One line per class whose verdict is not ok, with the reasons."""
    return [f"class {label!r} is {verdict}: {', '.join(report['classes'][label]['problems'])}"
            for label, verdict in report["not_ok"].items()]

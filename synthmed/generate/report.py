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


def write_quality(folder: Path, dataset: Dataset, rows: Sequence[Row], *, judge: Judge | None, copy_threshold: float,
                  device: Any) -> dict[str, Any]:
    """quality.json and one contact sheet per class (synthetic above real) into `folder`."""
    from synthmed.data.imageio import decode_png, encode_png, to_chw
    from synthmed.quality import contact_sheet, quality_report

    by_label: dict[str, list[Row]] = {}
    for row in rows:
        by_label.setdefault(row["label"], []).append(row)
    synthetic = {label: np.stack([to_chw(decode_png(folder / r["file_name"])) for r in group])
                 for label, group in by_label.items()}
    real = {label: dataset.load_images(dataset.select(split="train", source="real", labels=[label]))
            for label in dataset.classes}
    report = quality_report(synthetic, real, classes=dataset.classes, judge=judge.module if judge else None,
                            judge_config=judge.config if judge else None, copy_threshold=copy_threshold, device=device)
    report["judge"] = str(judge.path) if judge else None
    sheets = folder / SHEETS_FOLDER
    sheets.mkdir(exist_ok=True)
    for label, images in synthetic.items():
        sheet = contact_sheet(images, real[label])
        (sheets / f"{label}.png").write_bytes(encode_png(sheet))
    write_json(folder / QUALITY_FILE, report)
    return report

"""`synthmed evaluate` as a library call: score every repeat of a RUN on one split and write
the report folder (metrics.json, confusion matrix, predictions.csv) atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synthmed.data import OutputFolder
from synthmed.errors import UsageError
from synthmed.evaluate.report import write_report
from synthmed.evaluate.scoring import Evaluation, evaluate_run


def evaluate(run: Path, dataset: Path, out: Path, *, split: str = "test", device: Any = "cpu",
             batch_size: int = 256, overwrite: bool = False) -> Evaluation:
    """Score RUN on `split` of DATASET into OUT; returns the evaluation (its report is metrics.json).

    OUT is checked (and refused when it exists without `overwrite`, or over an input) before
    any model is loaded."""
    if batch_size < 1:
        raise UsageError(f"--batch-size {batch_size}: must be at least 1")
    with OutputFolder(out, inputs=[run, dataset], overwrite=overwrite) as folder:
        result = evaluate_run(run, dataset, split=split, device=device, batch_size=batch_size)
        write_report(folder.tmp, result)
        folder.write_provenance("evaluate", [Path(run), Path(dataset)], split=split)
    return result

"""`synthmed evaluate` as a library call: score every repeat of a RUN on one split and write
the report folder (metrics.json, confusion matrix, predictions.csv) atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from synthmed.data import OutputFolder, refuse_output_over_inputs
from synthmed.errors import UsageError
from synthmed.evaluate.report import write_report
from synthmed.evaluate.scoring import Evaluation, evaluate_run


def evaluate(run: Path | Sequence[Path], dataset: Path, out: Path, *, split: str = "test", device: Any = "cpu",
             batch_size: int = 256, overwrite: bool = False) -> Evaluation:
    """Score RUN (or the RUNs of the shards of one `train --shard` run, taken together) on
    `split` of DATASET into OUT; returns the evaluation (its report is metrics.json).

    OUT is checked (and refused when it exists without `overwrite`, or over an input) before
    any model is loaded, and the split's images before OUT is created."""
    if batch_size < 1:
        raise UsageError(f"--batch-size {batch_size}: must be at least 1")
    runs = [Path(run)] if isinstance(run, (str, os.PathLike)) else [Path(r) for r in run]
    refuse_output_over_inputs(out, [*runs, dataset])
    result = evaluate_run(runs[0] if len(runs) == 1 else runs, dataset, split=split, device=device,
                          batch_size=batch_size)
    with OutputFolder(out, inputs=[*runs, dataset], overwrite=overwrite) as folder:
        write_report(folder.tmp, result)
        folder.write_provenance("evaluate", [*runs, Path(dataset)], split=split)
    return result

"""`synthmed evaluate RUN DATASET -o REPORT`: score a trained classifier (every repeat) on a split."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from synthmed.cli.options import BatchSize, DatasetArg, Device, Json, Output, Overwrite, Quiet, Split
from synthmed.cli.output import emit, show


def evaluate(
    run: Annotated[list[Path], typer.Argument(
        help="Training RUN folder (a model folder, or run-01/... repeats); several: the shards of one `train --shard` run.",
        show_default=False, metavar="RUN")],
    dataset: DatasetArg,
    output: Output,
    split: Split = "test",
    batch_size: BatchSize = 256,
    device: Device = "auto",
    overwrite: Overwrite = False,
    json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Score a trained classifier (every repeat of RUN) on one split of a dataset.

    Several RUNs are the shards of one `train --shard K/N` run, scored together as one.

    Cross-entropy, accuracy, balanced accuracy, per-class and macro precision/recall/F1 and
    one-vs-rest AUROC, as the median and interquartile range over repeats. Writes metrics.json,
    confusion_matrix.csv/.png and predictions.csv."""
    from rich.markup import escape
    from rich.table import Table

    from synthmed.devices import resolve_device
    from synthmed.evaluate.job import evaluate as run_evaluation
    from synthmed.evaluate.metrics import METRICS, PER_CLASS
    from synthmed.evaluate.report import format_stat

    result = run_evaluation(run[0] if len(run) == 1 else run, dataset, output, split=split, device=resolve_device(device), batch_size=batch_size,
                            overwrite=overwrite)

    report = result.report
    repeats = report["repeats"]
    spread = escape(" median [q1, q3]") if repeats > 1 else ""
    table = Table(title=f"{report['model']} on {Path(dataset).name}/{split} ({report['images']} images, "
                        f"{repeats} repeat{'s' if repeats > 1 else ''})")
    table.add_column("metric")
    table.add_column("value" + spread, justify="right")
    for metric in METRICS:
        table.add_row(metric, format_stat(report["summary"][metric]))
    # Medians only here, so the table fits a terminal; quartiles are in metrics.json.
    from synthmed.cli.output import table_of

    per_class = table_of("per class" + (" (median over repeats)" if repeats > 1 else ""), ["class", "support", *PER_CLASS],
                         [[name, report["support"][name], *(f"{stats[s]['median']:.3f}" for s in PER_CLASS)]
                          for name, stats in report["per_class"].items()])
    show(table, quiet=quiet)
    show(per_class, quiet=quiet)
    emit(output, report, as_json=json)

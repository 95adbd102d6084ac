"""`synthmed mix REAL [SYNTH...] -o OUT`: X % of the real train images per class plus synthetic ones."""

from __future__ import annotations

import sys

from pathlib import Path
from typing import Annotated, Optional

import typer

from synthmed.cli.options import Balance, DatasetArg, Json, Output, Overwrite, Quiet, Seed
from synthmed.cli.output import emit, progress, show, table_of
from synthmed.parsing import comma_list


def mix(
    real: DatasetArg,
    synthetic_datasets: Annotated[
        Optional[list[Path]], typer.Argument(metavar="[SYNTH...]", help="Datasets with synthetic images (from generate).", show_default=False)
    ] = None,
    output: Output = ...,
    real_fraction: Annotated[str, typer.Option("--real", help="Fraction of each class's real train images: 0.8 or A=1.0,B=0.3.")] = "1.0",
    synthetic: Annotated[
        Optional[str],
        typer.Option("--synthetic", help="Synthetic per class: a fraction of the class's real count (0.2) or a count (B=500)."),
    ] = None,
    synthetic_classes: Annotated[
        Optional[str], typer.Option("--synthetic-classes", help="Comma list: only these classes get synthetic images.")
    ] = None,
    balance: Balance = False,
    oversample: Annotated[
        Optional[str],
        typer.Option("--oversample", help="Duplicates of the kept real train images per class, as --synthetic counts them "
                                          "(B=500): the control for synthetic images."),
    ] = None,
    seed: Seed = 0,
    overwrite: Overwrite = False,
    json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Mix real and synthetic images per class into a new train split; val and test stay REAL's."""

    from synthmed.data import Dataset, refuse_output_over_inputs
    from synthmed.mix.plan import plan_mix, write_mix

    refuse_output_over_inputs(output, [real, *(synthetic_datasets or [])])
    real_data = Dataset.open(real)
    synth_data = [Dataset.open(path) for path in synthetic_datasets or []]
    plan = plan_mix(
        real_data,
        synth_data,
        real_spec=real_fraction,
        synthetic_spec=synthetic,
        synthetic_classes=comma_list(synthetic_classes, option="--synthetic-classes", distinct=True),
        balance=balance,
        oversample_spec=oversample,
        seed=seed,
    )
    with progress(quiet=quiet) as display:
        summary = write_mix(plan, output, overwrite=overwrite, progress=display)
    keys = ["real_available", "real_kept", "synthetic_asked", "synthetic_added", *(["duplicates_added"] if oversample else []), "final"]
    table = table_of(f"train split of {output}", ["class", *(k.replace("_added", " added").replace("_", " ") for k in keys)],
                     [[label, *(row[k] for k in keys)] for label, row in summary["per_class"].items()])
    show(table, quiet=quiet)
    for note in summary["shortfalls"]:
        show(f"[yellow]{note}[/yellow]", quiet=quiet)
    for note in plan.quality_warnings:
        sys.stderr.write(f"synthmed: warning: {note}\n")
    emit(output, summary, as_json=json)

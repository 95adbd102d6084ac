"""`synthmed mix REAL [SYNTH...] -o OUT`: X % of the real train images per class plus synthetic ones."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from synthmed.cli.options import DatasetArg, Json, Output, Overwrite, Quiet, Seed
from synthmed.cli.output import emit, progress, show


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
    balance: Annotated[bool, typer.Option("--balance", help="Add synthetic images until every class matches the largest.")] = False,
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
    from rich.table import Table

    from synthmed.data import Dataset, refuse_output_over_inputs
    from synthmed.mix.plan import plan_mix, write_mix
    from synthmed.preprocess.options import distinct_names

    refuse_output_over_inputs(output, [real, *(synthetic_datasets or [])])
    real_data = Dataset.open(real)
    synth_data = [Dataset.open(path) for path in synthetic_datasets or []]
    plan = plan_mix(
        real_data,
        synth_data,
        real_spec=real_fraction,
        synthetic_spec=synthetic,
        synthetic_classes=list(distinct_names(synthetic_classes, "--synthetic-classes") or []) if synthetic_classes else None,
        balance=balance,
        oversample_spec=oversample,
        seed=seed,
    )
    total = sum(len(p.real_kept) + len(p.synthetic) + len(p.duplicates) for p in plan.per_class.values()) + len(plan.held_out)
    with progress(quiet=quiet) as bar:
        task = bar.add_task("linking", total=total, unit="img")
        summary = write_mix(plan, output, overwrite=overwrite, on_advance=lambda n: bar.advance(task, n))
    table = Table(title=f"train split of {output}")
    keys = ["real_available", "real_kept", "synthetic_asked", "synthetic_added", *(["duplicates_added"] if oversample else []), "final"]
    for key in ["class", *keys]:
        table.add_column(key.replace("_added", " added").replace("_", " "), justify="left" if key == "class" else "right")
    for label, row in summary["per_class"].items():
        table.add_row(label, *(str(row[k]) for k in keys))
    show(table, quiet=quiet)
    for note in summary["shortfalls"]:
        show(f"[yellow]{note}[/yellow]", quiet=quiet)
    emit(output, summary, as_json=json)

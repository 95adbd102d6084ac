"""`synthmed compare REPORT...`: one table comparing evaluation reports (e.g. real vs real+synthetic)."""

from __future__ import annotations

import json as jsonlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from synthmed.cli.options import Json


def compare(
    reports: Annotated[list[Path], typer.Argument(help="Report folders written by `synthmed evaluate`.",
                                                  show_default=False)],
    metric: Annotated[list[str], typer.Option(
        "--metric", help="Metric column (repeatable); default: accuracy, balanced_accuracy, macro_f1, "
                         "cross_entropy, auroc_macro.")] = [],  # noqa: B006 - typer
    json: Json = False,
) -> None:
    """Print a table with one row per report: each metric's median and quartiles over repeats.

    A last column gives the F1 of the minority class (fewest train images). The table is the
    result, so it goes to stdout."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from synthmed.evaluate.report import compare_reports

    metrics = metric or ["accuracy", "balanced_accuracy", "macro_f1", "cross_entropy", "auroc_macro"]
    header, rows = compare_reports(reports, metrics)
    if json:
        sys.stdout.write(jsonlib.dumps([dict(zip(header, row)) for row in rows], indent=2) + "\n")
        return
    table = Table(title=escape("evaluation reports (median [q1, q3] over repeats)"))
    for i, name in enumerate(header):
        table.add_column(name, justify="left" if i < 2 else "right")
    for row in rows:
        table.add_row(*row)
    Console(file=sys.stdout, width=max(100, 24 * len(header))).print(table)

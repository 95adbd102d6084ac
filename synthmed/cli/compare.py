"""`synthmed compare REPORT...`: evaluation reports side by side (e.g. real vs real+synthetic)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from synthmed.cli.options import Json


def compare(
    reports: Annotated[list[Path], typer.Argument(help="Report folders written by `synthmed evaluate`.",
                                                  show_default=False, metavar="REPORT...")],
    metric: Annotated[list[str], typer.Option(
        "--metric", help="Metric row (repeatable); default: accuracy, balanced_accuracy, macro_f1, "
                         "cross_entropy, auroc_macro.")] = [],  # noqa: B006 - typer
    minority: Annotated[Optional[str], typer.Option(
        "--minority", help="The class whose F1 gets its own row (default: fewest train images in the first report).")] = None,
    plot: Annotated[Optional[Path], typer.Option(
        "--plot", help="Also write a PNG: per metric, a box and every repeat per report.")] = None,
    allow_different_images: Annotated[bool, typer.Option(
        "--allow-different-images", help="Compare reports made on different test images (with a warning).")] = False,
    json: Json = False,
) -> None:
    """Print one table of evaluation reports: per metric, each report's median [q1, q3] over repeats.

    A last row gives the F1 of the minority class. Reports scored on different images are
    refused. The table is the result, so it goes to stdout; `--json` prints numbers instead."""
    from synthmed.cli.output import emit, warn
    from synthmed.evaluate.compare import DEFAULT_METRICS, compare_reports, plot_comparison

    comparison = compare_reports(reports, metric or DEFAULT_METRICS, minority=minority,
                                 allow_different_images=allow_different_images)
    for message in comparison.warnings:
        warn(message)
    if plot is not None:
        plot_comparison(plot, comparison)
    if json:
        emit(None, {**comparison.as_json(), "plot": str(plot) if plot else None}, as_json=True)
        return
    from rich.console import Console

    console = Console(file=sys.stdout)
    for table in comparison_tables(comparison, console.width):
        console.print(table)
    legend = "median [q1, q3] over repeats"
    if comparison.minority_class:
        legend += f"; minority class {comparison.minority_class} ({comparison.minority_from})"
    console.print(legend, markup=False, overflow="fold")


def _cell(stat: dict | None, two_lines: bool) -> str:
    from synthmed.evaluate.report import format_stat

    if not stat:
        return "n/a"
    text = format_stat(stat)
    return text.replace(" [", "\n[") if two_lines else text


def comparison_tables(comparison, width: int) -> list:
    """Rich tables that fit `width` columns: metrics are rows, reports columns; cells go on two
    lines when one line does not fit, and reports beyond what fits go to further tables."""
    from rich.markup import escape
    from rich.table import Table

    rows = [(m, [r["metrics"][m] for r in comparison.reports]) for m in comparison.metrics]
    if comparison.minority_class:
        rows.append((f"f1 {comparison.minority_class}", [r["minority_f1"] for r in comparison.reports]))
    first = max(len(name) for name, _ in rows)
    names = max(len(r["report"]) for r in comparison.reports)  # report names are never cut
    one_line = max(names, *(len(_cell(stat, False)) for _, stats in rows for stat in stats))
    two_lines = max(names, *(len(line) for _, stats in rows for stat in stats for line in _cell(stat, True).splitlines()))
    per_column = 3  # borders and padding of a column
    fits = lambda cell: max(1, (width - first - per_column - 1) // (cell + per_column))  # noqa: E731
    split = fits(one_line) < len(comparison.reports)
    per_table = fits(two_lines if split else one_line)
    tables = []
    for start in range(0, len(comparison.reports), per_table):
        chunk = list(range(start, min(start + per_table, len(comparison.reports))))
        table = Table(title=escape(f"{comparison.reports[0]['split']} split") if not tables else None)
        table.add_column("", no_wrap=True)
        for i in chunk:
            name = comparison.reports[i]["report"]
            table.add_column(escape(name), justify="right", overflow="fold", min_width=min(len(name), width // 2))
        table.add_row("model", *(escape(str(comparison.reports[i]["model"])) for i in chunk))
        table.add_row("repeats", *(str(comparison.reports[i]["repeats"]) for i in chunk), end_section=True)
        for name, stats in rows:
            table.add_row(escape(name), *(escape(_cell(stats[i], split)) for i in chunk))
        tables.append(table)
    return tables

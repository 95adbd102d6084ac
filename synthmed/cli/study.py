"""`synthmed study STUDY.toml -o OUT`: a declared grid of mix + train + evaluate cells with
controls and paired statistics (docs/study.md)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from synthmed.cli.options import Device, DryRun, Json, Output, Overwrite, Quiet, Shard
from synthmed.cli.output import emit, progress, show, stderr


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def _messages(quiet: bool):
    """Warnings always, notes unless --quiet, as plain lines on stderr."""

    def message(level: str, text: str) -> None:
        if level == "warning" or not quiet:
            stderr.print(f"{level}: {text}", style="yellow" if level == "warning" else "dim", markup=False,
                         highlight=False, soft_wrap=True)
    return message


def study(
    study_file: Annotated[Path, typer.Argument(metavar="STUDY.toml", help="The study file.", show_default=False)],
    output: Output,
    quick: Annotated[bool, typer.Option("--quick", help="Apply the study's [quick] table (a small, fast version).")] = False,
    dry_run: DryRun = False,
    report_only: Annotated[bool, typer.Option("--report-only", help="Write the report from finished cells (merges shards).")] = False,
    shard: Shard = None,
    executor: Annotated[str, typer.Option("--executor", help="inprocess (default) or ray.")] = "inprocess",
    address: Annotated[Optional[str], typer.Option("--address", help="Ray cluster address (default: start a local Ray).")] = None,
    gpus_per_cell: Annotated[Optional[float], typer.Option(
        "--gpus-per-cell", help="GPUs each Ray task asks for (a fraction shares one; default 1 when the cluster has GPUs).")] = None,
    device: Device = "auto",
    overwrite: Overwrite = False,
    json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Run a study: every cell is mix + train (N repeats) + evaluate, with automatic controls
    (same real images without synthetic ones, duplicated real images, 100 % real, same optimizer
    steps), paired statistics and verdicts. Writes results.csv, summary.json, report.md and
    figures/; finished repeats are cached in OUT/cache, so a rerun continues."""
    from synthmed.study.run import run_study

    command = "synthmed study " + shlex.join(sys.argv[2:]) if sys.argv[1:2] == ["study"] else \
        f"synthmed study {shlex.quote(str(study_file))} -o {shlex.quote(str(output))}" + \
        "".join(f" {flag}" for flag, on in (("--quick", quick), ("--report-only", report_only)) if on)
    with progress(quiet=quiet or dry_run) as display:
        summary = run_study(study_file, output, quick=quick, overwrite=overwrite, dry_run=dry_run,
                            report_only=report_only, shard=shard, executor=executor, address=address,
                            gpus_per_cell=gpus_per_cell, device=None if device == "auto" else device, command=command, progress=display,
                            message=_messages(quiet))
    if dry_run:
        _print_plan(summary, as_json=json)
        return
    if summary.get("report") is None and "shard" in summary:
        show(f"shard {summary['shard']}: {summary['computed']} repeats computed, {summary['cached']} cached; "
             f"merge with `synthmed study {study_file} -o {output} --report-only` once every shard is done", quiet=quiet)
    else:
        _print_verdicts(summary, quiet=quiet)
    emit(output, summary, as_json=json)


def _print_plan(summary: dict[str, Any], *, as_json: bool) -> None:
    import json as jsonlib

    from rich.console import Console
    from rich.table import Table

    if as_json:
        sys.stdout.write(jsonlib.dumps(summary, indent=2) + "\n")
        return
    table = Table(title=f"study {summary['study']}: {summary['count']} cells (shard {summary['shard']})")
    for column in ("#", "cell", "role", "augment", "classifier", "repeats", "cached", "estimate"):
        table.add_column(column, justify="right" if column in ("#", "repeats", "cached", "estimate") else "left")
    for i, row in enumerate(summary["cells"], start=1):
        table.add_row(str(i), row["cell"], row["role"], row["augment"], row["classifier"], str(row["repeats"]),
                      str(row["cached"]), _duration(row["estimate_seconds"]))
    console = Console(file=sys.stdout, width=140)
    console.print(table)
    sources = "".join(f", source {k} {_duration(v)}" for k, v in summary["sources_seconds"].items())
    console.print(f"{summary['repeats_left']} repeats to run; estimate {_duration(summary['estimate_seconds'])}"
                  f"{sources} ({summary['note']})", highlight=False, soft_wrap=True)


def _print_verdicts(summary: dict[str, Any], *, quiet: bool) -> None:
    from rich.markup import escape
    from rich.table import Table

    primary = summary["primary"]
    table = Table(title=escape(f"{summary['study']}: {primary} on {summary['split']} (median [q1, q3], "
                               f"{summary['repeats']} repeats)"))
    cited = {p["source"] for cell in summary["cells"] for p in cell["published"] if p["metric"] == primary}
    published = bool(cited)
    for column in ("cell", "classifier", "augment", primary, "verdict", *(["published *"] if published else [])):
        table.add_column(column)
    for cell in summary["cells"]:
        stat = cell["metrics"][primary]
        value = "n/a" if stat["median"] is None else f"{stat['median']:.3f} [{stat['q1']:.3f}, {stat['q3']:.3f}]"
        entry = summary["verdicts"].get(cell["id"])
        row = [cell["label"], cell["classifier"], cell["augment"], value,
               entry["overall"] if entry else summary["control_names"].get(cell["role"], cell["role"])]
        if published:
            row.append(", ".join(f"{p['value']:g} ({p['source']})" for p in cell["published"] if p["metric"] == primary))
        table.add_row(*(escape(text) for text in row))
    if not quiet:  # a log file gets the width of a terminal, not rich's 80 columns
        stderr.print(table, width=None if stderr.is_terminal else 140)
    if published:
        show("* published: the paper's numbers, on its own dataset, beside this study's: not comparable one-to-one",
             quiet=quiet)
        for i, entry in enumerate(summary["published"], start=1):
            if i in cited:
                show(escape(f"  ({i}) {entry['label']}"), quiet=quiet)
    for text in summary["notes"]:
        show(f"[yellow]note:[/yellow] {text}", quiet=quiet)

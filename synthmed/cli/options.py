"""Options shared by several commands, defined once (as the Hugging Face hub CLI does)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional, Sequence

import typer

from synthmed.errors import UsageError

Output = Annotated[Path, typer.Option("-o", "--output", help="Output folder (written atomically).")]
Seed = Annotated[int, typer.Option("--seed", help="Random seed; the same seed and inputs give the same outputs.")]
Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace an existing output (only once the new one is complete).")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue an interrupted run without repeating finished work.")]
Json = Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout instead of the output path.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or tables on stderr.")]
Shard = Annotated[Optional[str], typer.Option("--shard", help="K/N: do only the K-th of N equal parts (for several machines).")]
FitEpochs = Annotated[Optional[int], typer.Option("--fit-epochs", min=1, help="Epochs to fit the model for.")]
ModelDir = Annotated[Optional[Path], typer.Option("--model", help="Use a model folder fitted earlier instead of fitting.")]
DatasetArg = Annotated[Path, typer.Argument(help="Dataset folder.", show_default=False, metavar="DATASET")]


def parse_key_values(pairs: list[str] | None, option: str, example: str = "width=32") -> dict[str, Any]:
    """Repeated `KEY=VALUE` option values -> keyword arguments for a plugin factory.

    A value is JSON when it parses as JSON (3, 0.5, true, [16, 32]), else a string; dashes in
    keys become underscores. One shared parser for -g, -a, --model-arg and friends."""
    import json

    result: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key.isidentifier():
            raise UsageError(f"{option} {pair!r}: expected KEY=VALUE, for example {option.split('/')[0]} {example}")
        try:
            result[key] = json.loads(value)
        except ValueError:
            result[key] = value
    return result


def comma_list(values: str | Sequence[str] | None) -> list[str] | None:
    """Names given as `a,b`, repeated (`--classes a --classes b`) or both -> ['a', 'b'];
    None when nothing was given."""
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    return [part.strip() for value in values for part in value.split(",") if part.strip()] or None

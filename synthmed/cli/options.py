"""Options shared by several commands, defined once (as the Hugging Face hub CLI does)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from synthmed.parsing import comma_list, parse_key_values  # noqa: F401 - re-exported for the commands

Output = Annotated[Path, typer.Option("-o", "--output", help="Output folder (written atomically).")]
Seed = Annotated[int, typer.Option("--seed", help="Random seed; the same seed and inputs give the same outputs.")]
Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace an existing output (only once the new one is complete).")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue an interrupted run without repeating finished work.")]
Json = Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout instead of the output path.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or tables on stderr.")]
Shard = Annotated[Optional[str], typer.Option("--shard", help="K/N: do only the K-th of N equal parts (for several machines).")]
FitEpochs = Annotated[Optional[int], typer.Option("--fit-epochs", help="Epochs to fit the model for.")]
ModelDir = Annotated[Optional[Path], typer.Option("--model", help="Use a model folder fitted earlier instead of fitting.")]
DatasetArg = Annotated[Path, typer.Argument(help="Dataset folder.", show_default=False, metavar="DATASET")]

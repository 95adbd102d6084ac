"""Options shared by several commands, each defined once here as an Annotated alias so that a
name means one thing and reads the same in every command; and the old spellings of renamed
options, still accepted for one release."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from synthmed.errors import UsageError
from synthmed.parsing import comma_list, parse_key_values  # noqa: F401 - re-exported for the commands

Output = Annotated[Path, typer.Option("-o", "--output", help="Output folder (written atomically).")]
Seed = Annotated[int, typer.Option("--seed", help="Random seed; the same seed and inputs give the same outputs.")]
Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace an existing output (only once the new one is complete).")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue an interrupted run without repeating finished work.")]
Json = Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout instead of the output path.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or tables on stderr.")]
Shard = Annotated[Optional[str], typer.Option("--shard", help="K/N: do only the K-th of N equal parts (for several machines).")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print what it would do (how much, how long); write nothing.")]
DatasetArg = Annotated[Path, typer.Argument(help="Dataset folder.", show_default=False, metavar="DATASET")]

# Fitting: --model DIR is always a fitted model folder; a classifier to train is --classifier NAME.
# The defaults are the models' own (registry fit_epochs, interpolate and compress constants);
# a test keeps this text equal to them, since --help must not import the models.
FIT_EPOCHS_HELP = ("Epochs to fit the model for (default: the model's own: ddpm 100, acgan 50, dcgan 50; "
                   "autoencoders 20; learned codecs 30).")
FitEpochs = Annotated[Optional[int], typer.Option("--fit-epochs", help=FIT_EPOCHS_HELP)]
ModelDir = Annotated[Optional[Path], typer.Option("--model", help="Use a model folder fitted earlier instead of fitting.")]
BatchSize = Annotated[int, typer.Option("--batch-size", help="Images per batch.")]
LearningRate = Annotated[Optional[float], typer.Option("--lr", help="Adam learning rate.")]

# Which images: --split is one split, --splits several (comma list or repeated).
Split = Annotated[str, typer.Option("--split", help="One split: train, val or test.")]
Splits = Annotated[Optional[list[str]], typer.Option("--splits", help="Only images of these splits: train, val, test (comma list or repeated).")]
Classes = Annotated[Optional[list[str]], typer.Option("--classes", help="Only these classes (comma list or repeated; default all).")]
ValFraction = Annotated[Optional[float], typer.Option(
    "--val-fraction", help="Move this fraction of the train subjects to val (stratified by class).")]

# How many images per class.
PerClass = Annotated[Optional[int], typer.Option("--per-class", help="Make N images of each chosen class.")]
Ratio = Annotated[Optional[float], typer.Option("--ratio", help="Make R x each class's real train count (0.2 = +20%).")]
Balance = Annotated[bool, typer.Option("--balance", help="Top every class up to the count of the largest one.")]

# What a renamed spelling means now, for the error when it is given in that meaning.
NEW_MEANINGS = {
    "--model": "a fitted model folder",
    "--split": "one split (train, val or test)",
    "--weights": "a pretrained weights file",
}


def old_spelling(*names: str, new: str) -> Any:
    """A hidden option for the old spelling of `new`, accepted for one release (see `renamed`)."""
    return typer.Option(*names, hidden=True, help=f"Old spelling of {new}.")


def renamed(ctx: typer.Context, value: Any, old_value: Any, *, new: str, old: str,
            old_meaning: Callable[[Any], bool] | None = None) -> Any:
    """The value of option `new`, or, for one release, the one given under its old spelling `old`,
    with one warning line on stderr.

    Both spellings at once are refused. `old_meaning(old_value)` false means the old name was
    given in its new meaning (NEW_MEANINGS), which this command does not take: a one-line error
    naming `new` instead of a guess."""
    if old_value is None:
        return value
    command = ctx.info_name or "synthmed"
    new_flag = new.split()[0]
    param = next(p for p in ctx.command.params if new_flag in getattr(p, "opts", ()))
    source = ctx.get_parameter_source(param.name)
    if source is not None and source.name != "DEFAULT":
        raise UsageError(f"{old} and {new_flag}: {old} is the old spelling of {new_flag} in {command}; give only {new_flag}")
    if old_meaning is not None and not old_meaning(old_value):
        shown = ",".join(old_value) if isinstance(old_value, (list, tuple)) else old_value
        raise UsageError(f"{old} {shown}: {old} now means {NEW_MEANINGS[old]}, which {command} does not take; use {new}")
    if os.environ.get("RANK", "0") == "0":  # one line per command, not one per torchrun process
        sys.stderr.write(f"synthmed: warning: {command} {old} is deprecated; use {new} (the old spelling goes in the next release)\n")
    return old_value

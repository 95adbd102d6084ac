"""What the command line prints: results on stdout (the output path, or JSON with --json);
tables, messages and progress bars on stderr. `ProgressDisplay` is the one place progress
events (synthmed.progress) are drawn."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

stderr = Console(stderr=True)


def emit(path: Path | None, summary: dict[str, Any] | None = None, *, as_json: bool = False) -> None:
    """Print the command's result on stdout: the output path, or the JSON summary."""
    if as_json:
        record = {"output": str(path) if path is not None else None, **(summary or {})}
        sys.stdout.write(json.dumps(record, indent=2, default=str) + "\n")
    elif path is not None:
        sys.stdout.write(f"{path}\n")
    sys.stdout.flush()


def show(renderable: Any, *, quiet: bool = False) -> None:
    """A table or message on stderr, unless --quiet."""
    if not quiet:
        stderr.print(renderable)


def format_status(status: dict[str, Any]) -> str:
    """Status fields of an `Advanced` event as shown after the rate: 'loss 0.123 acc 0.5'."""
    return " ".join(f"{key} {value:.3g}" if isinstance(value, float) else f"{key} {value}" for key, value in status.items())


class ProgressDisplay:
    """Progress events drawn as rich bars on stderr, with counts, rate and time left.

    Use as `with progress(quiet=quiet) as display: engine(..., progress=display)`. Nothing is
    shown until the first task starts (so an early error prints alone), nothing at all with
    --quiet, and on an error the bars are cleared so the one-line message stands alone."""

    def __init__(self, *, quiet: bool = False) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            ProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.text import Text

        class RateColumn(ProgressColumn):
            def render(self, task):  # noqa: ANN001 - rich's signature
                unit = task.fields.get("unit", "it")
                speed = task.finished_speed or task.speed
                rate = f"{speed:.1f} {unit}/s" if speed else f"- {unit}/s"
                status = task.fields.get("status", "")
                return Text(f"{rate} {status}".rstrip(), style="progress.data.speed")

        self.bars = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(),
            TimeRemainingColumn(),
            console=stderr,
            disable=quiet,
            transient=False,
        )
        self._bars: dict[int, Any] = {}  # event task -> rich task id

    def __call__(self, event: Any) -> None:
        from synthmed.progress import Advanced, Finished, Started

        if isinstance(event, Started):
            if not self.bars.live.is_started and not self.bars.disable:
                self.bars.start()
            self._bars[event.task] = self.bars.add_task(event.description, total=event.total, completed=event.done,
                                                        unit=event.unit)
        elif isinstance(event, Advanced) and event.task in self._bars:
            fields = {"status": format_status(dict(event.status))} if event.status else {}
            self.bars.update(self._bars[event.task], advance=event.n, **fields)
        elif isinstance(event, Finished) and event.task in self._bars:
            bar = next(task for task in self.bars.tasks if task.id == self._bars[event.task])
            if bar.total is None or bar.completed < bar.total:
                # Ended before its total (early stopping): show it complete.
                self.bars.update(bar.id, total=bar.completed, completed=bar.completed)

    def __enter__(self) -> "ProgressDisplay":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.bars.live.is_started:
            if exc_type is not None:
                self.bars.live.transient = True
            self.bars.stop()


def progress(*, quiet: bool = False) -> ProgressDisplay:
    """The progress display of a command (see `ProgressDisplay`)."""
    return ProgressDisplay(quiet=quiet)

"""stdout carries results (the output path, or JSON with --json); everything else goes to stderr."""

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


def progress(*, quiet: bool = False):
    """A rich progress bar on stderr with counts, rate and time left.

    `task = bar.add_task("sampling", total=n, unit="img")`; extra fields given to
    `bar.update(task, status="loss 0.12")` are shown after the rate."""
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

    class LazyProgress(Progress):
        """Shows nothing until the first task is added, so an early error prints alone."""

        def __enter__(self):
            return self

        def add_task(self, *args, **kwargs):
            if not self.live.is_started and not self.disable:
                self.start()
            return super().add_task(*args, **kwargs)

        def __exit__(self, exc_type, exc, tb):
            if self.live.is_started:
                if exc_type is not None:
                    self.live.transient = True  # on an error, the one-line message stands alone
                self.stop()

    return LazyProgress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeRemainingColumn(),
        console=stderr,
        disable=quiet,
        transient=False,
    )

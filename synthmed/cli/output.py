"""What the command line prints: results on stdout (the output path, or JSON with --json);
tables, messages and progress on stderr.

Progress events (synthmed.progress) have two renderers: `ProgressDisplay`, rich bars on a
terminal, and `ProgressLog`, plain lines when stderr is a file or a pipe (batch servers,
nohup, Slurm), where bars would leave nothing readable. `progress()` picks one. Both show
counts, the rate since the task started and the time left from the first update on.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rich.console import Console

stderr = Console(stderr=True)

LOG_EVERY_FRACTION = 0.1  # a plain line each time another 10 % is done ...
LOG_EVERY_SECONDS = 30.0  # ... or when this long has passed since the last line,
LOG_QUIET_SECONDS = 1.0  # but 10 % lines no closer than this (a task of seconds logs start and end)


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


def table_of(title: str | None, header: Any, rows: Any, *, names: Any = ("class",)) -> Any:
    """A rich table whose name columns (`names`: class, target...) keep their full width, so
    at 80 columns the numbers and headers wrap instead of a class name being cut."""
    from rich.markup import escape
    from rich.table import Table

    rows = [[str(cell) for cell in row] for row in rows]
    table = Table(title=escape(title) if title else None)
    for i, column in enumerate(header):
        if column in names:
            table.add_column(escape(column), no_wrap=True, min_width=max([len(column), *(len(r[i]) for r in rows)]))
        else:
            table.add_column(escape(column), justify="right", overflow="fold")
    for row in rows:
        table.add_row(*map(escape, row))
    return table


def warn(message: str) -> None:
    """One `synthmed: warning: ...` line on stderr, shown even with --quiet (it is about the result)."""
    sys.stderr.write(f"synthmed: warning: {message}\n")
    sys.stderr.flush()


def format_status(status: dict[str, Any]) -> str:
    """Status fields of an `Advanced` event as shown after the rate: 'loss 0.123 acc 0.5'."""
    return " ".join(f"{key} {value:.3g}" if isinstance(value, float) else f"{key} {value}" for key, value in status.items())


def format_duration(seconds: float) -> str:
    """'45s', '12m05s', '3h02m'."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def format_rate(rate: float | None, unit: str) -> str:
    if rate is None:
        return ""
    if rate >= 1 or rate == 0:
        return f"{rate:.1f} {unit}/s"
    return f"{1 / rate:.1f} s/{unit}"  # slow work (epochs of a big model) reads better per unit


@dataclass
class TaskState:
    """What a renderer knows of one task: its counts since it started and its last status."""

    description: str
    total: int | None
    unit: str
    done: int
    started: float
    resumed_from: int = 0
    status: dict[str, Any] = field(default_factory=dict)
    updated: bool = False

    def rate(self, now: float) -> float | None:
        """Units per second since the task started, from the first update (None before)."""
        elapsed = now - self.started
        if not self.updated or elapsed <= 0:
            return None
        return (self.done - self.resumed_from) / elapsed

    def left(self, now: float) -> float | None:
        rate = self.rate(now)
        if self.total is None or not rate:
            return None
        return max(0, self.total - self.done) / rate


class _Renderer:
    """Turns events into TaskState updates; subclasses draw them."""

    def __init__(self, *, quiet: bool = False, clock: Callable[[], float] = time.monotonic) -> None:
        self.quiet = quiet
        self.clock = clock
        self.tasks: dict[int, TaskState] = {}

    def __call__(self, event: Any) -> None:
        from synthmed.progress import Advanced, Finished, Started

        if self.quiet:
            return
        if isinstance(event, Started):
            state = TaskState(event.description, event.total, event.unit, event.done, self.clock(), event.done)
            self.tasks[event.task] = state
            self.started(event.task, state)
        elif isinstance(event, Advanced) and event.task in self.tasks:
            state = self.tasks[event.task]
            state.done += event.n
            state.updated = True
            if event.status:
                state.status = dict(event.status)
            self.advanced(event.task, state)
        elif isinstance(event, Finished) and event.task in self.tasks:
            self.finished(event.task, self.tasks.pop(event.task))

    def started(self, task: int, state: TaskState) -> None: ...

    def advanced(self, task: int, state: TaskState) -> None: ...

    def finished(self, task: int, state: TaskState) -> None: ...

    def __enter__(self) -> "_Renderer":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        return None


class ProgressLog(_Renderer):
    """Progress as plain lines on stderr, for logs: one when a task starts, one each time
    another 10 % is done or 30 s have passed, one when it ends. Each line reads
    `HH:MM:SS what done/total unit (p%), rate, eta, status`."""

    def __init__(self, *, quiet: bool = False, clock: Callable[[], float] = time.monotonic,
                 write: Callable[[str], Any] | None = None) -> None:
        super().__init__(quiet=quiet, clock=clock)
        self.write = write or self._stderr
        self._last: dict[int, float] = {}
        self._next_mark: dict[int, float] = {}
        self._pending: dict[int, str] = {}

    @staticmethod
    def _stderr(line: str) -> None:
        sys.stderr.write(line)
        sys.stderr.flush()

    def _line(self, state: TaskState, now: float, *, end: str = "") -> str:
        counts = f"{state.done}/{state.total}" if state.total is not None else f"{state.done}"
        parts = [f"{time.strftime('%H:%M:%S')} {state.description} {counts} {state.unit}"]
        if state.total:
            parts[0] += f" ({100 * state.done / state.total:.0f}%)"
        rate = state.rate(now)
        if rate is not None:
            parts.append(format_rate(rate, state.unit))
        left = state.left(now)
        if end:
            parts.append(end)
        elif left is not None:
            parts.append(f"eta {format_duration(left)}")
        if state.status:
            parts.append(format_status(state.status))
        return ", ".join(parts) + "\n"

    def _flush(self, task: int) -> None:
        # The start line waits for the first progress, so an error before any work stands alone.
        pending = self._pending.pop(task, None)
        if pending:
            self.write(pending)

    def started(self, task: int, state: TaskState) -> None:
        now = self.clock()
        self._last[task] = now
        fraction = state.done / state.total if state.total else 0.0
        self._next_mark[task] = (int(fraction / LOG_EVERY_FRACTION + 1e-9) + 1) * LOG_EVERY_FRACTION
        self._pending[task] = self._line(state, now, end="resumed" if state.done else "started")

    def advanced(self, task: int, state: TaskState) -> None:
        self._flush(task)
        now = self.clock()
        due = now - self._last[task] >= LOG_EVERY_SECONDS
        if state.total:
            fraction = state.done / state.total
            if fraction + 1e-9 >= self._next_mark[task]:
                due = due or now - self._last[task] >= LOG_QUIET_SECONDS
                self._next_mark[task] = (int(fraction / LOG_EVERY_FRACTION + 1e-9) + 1) * LOG_EVERY_FRACTION
            if state.done >= state.total:
                due = False  # the `finished` line says it
        if due:
            self._last[task] = now
            self.write(self._line(state, now))

    def finished(self, task: int, state: TaskState) -> None:
        self._flush(task)
        now = self.clock()
        self.write(self._line(state, now, end=f"done in {format_duration(now - state.started)}"))
        self._last.pop(task, None)
        self._next_mark.pop(task, None)


class ProgressDisplay(_Renderer):
    """Progress events drawn as rich bars on stderr, with counts, rate and time left.

    Use as `with progress(quiet=quiet) as display: engine(..., progress=display)`. Nothing is
    shown until the first task starts (so an early error prints alone), nothing at all with
    --quiet, and on an error the bars are cleared so the one-line message stands alone."""

    def __init__(self, *, quiet: bool = False, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(quiet=False, clock=clock)  # quiet disables the bars, but events are still counted
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn
        from rich.text import Text

        renderer = self

        class RateColumn(ProgressColumn):
            """Rate and time left from our own counts: shown from the first update, not after
            rich's speed estimate has two samples."""

            def render(self, task):  # noqa: ANN001 - rich's signature
                state = renderer.tasks.get(task.fields.get("event_task"))
                if state is None:
                    return Text("")
                now = renderer.clock()
                parts = [format_rate(state.rate(now), state.unit)]
                left = state.left(now)
                if left is not None:
                    parts.append(f"eta {format_duration(left)}")
                parts.append(format_status(state.status))
                return Text("  ".join(p for p in parts if p), style="progress.data.speed")

        self.bars = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("{task.fields[unit]}"),
            RateColumn(),
            console=stderr,
            disable=quiet,
            transient=False,
        )
        self._bars: dict[int, Any] = {}  # event task -> rich task id

    def started(self, task: int, state: TaskState) -> None:
        if not self.bars.live.is_started and not self.bars.disable:
            self.bars.start()
        self._bars[task] = self.bars.add_task(state.description, total=state.total, completed=state.done,
                                              unit=state.unit, event_task=task)

    def advanced(self, task: int, state: TaskState) -> None:
        if task in self._bars:
            self.bars.update(self._bars[task], completed=state.done, status=format_status(state.status))

    def finished(self, task: int, state: TaskState) -> None:
        if task not in self._bars:
            return
        bar = next(t for t in self.bars.tasks if t.id == self._bars[task])
        if bar.total is None or bar.completed < bar.total:
            # Ended before its total (early stopping): show it complete.
            self.bars.update(bar.id, total=bar.completed, completed=bar.completed)

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.bars.live.is_started:
            if exc_type is not None:
                self.bars.live.transient = True
            self.bars.stop()


def progress(*, quiet: bool = False) -> _Renderer:
    """The progress renderer of a command: bars on a terminal, plain lines otherwise
    (`SYNTHMED_PROGRESS=bars|lines` chooses), nothing with --quiet."""
    import os

    choice = os.environ.get("SYNTHMED_PROGRESS", "").strip().lower()
    if choice not in ("", "bars", "lines"):
        from synthmed.errors import UsageError

        raise UsageError(f"SYNTHMED_PROGRESS={choice!r}: expected bars or lines")
    if choice == "lines" or (choice == "" and not stderr.is_terminal):
        return ProgressLog(quiet=quiet)
    return ProgressDisplay(quiet=quiet)

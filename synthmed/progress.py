"""The progress protocol: engines report what they are doing as events; only `synthmed.cli`
draws them.

An engine function takes `progress: Progress = no_progress`, a callable that receives events,
and reports each piece of work as a task:

    with start_task(progress, "sampling", total=len(todo), unit="img") as task:
        for batch in batches:
            ...
            task(len(batch), loss=0.12)      # advanced by n, with optional status fields

which sends, in order:

- `Started(task, description, total, unit, done)`: a task begins; `total` may be None
  (unknown length), `done` counts work finished before (a resumed run);
- `Advanced(task, description, n, status)`: `n` more units are done; `status` holds named
  numbers (or short strings) worth showing, such as a loss;
- `Finished(task, description)`: the task ended normally (possibly before `total`, as an
  early-stopped fit does). A task cut short by an error sends no `Finished`.

`task` is a number unique within the process, so tasks running one after another (or nested)
are told apart. A started `Task` is also the `Advance` callable `task(n=1, **status)` handed
to plugins (`generator.fit(..., progress=task)`) and to inner loops (`advance=task`).

`synthmed.cli.output.ProgressDisplay` turns the events into rich progress bars on stderr;
any other callable (a test collecting events, a logger) works the same way.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Union

Status = Mapping[str, Union[float, str]]


@dataclass(frozen=True)
class Started:
    task: int
    description: str
    total: int | None
    unit: str = "it"
    done: int = 0


@dataclass(frozen=True)
class Advanced:
    task: int
    description: str
    n: int = 1
    status: Status = field(default_factory=dict)


@dataclass(frozen=True)
class Finished:
    task: int
    description: str


Event = Union[Started, Advanced, Finished]


class Progress(Protocol):
    """Where an engine sends its events."""

    def __call__(self, event: Event) -> None: ...


Advance = Callable[..., None]
"""`advance(n=1, **status)`: what a plugin's `fit(..., progress=...)` receives (a `Task`)."""


def no_progress(event: Event) -> None:
    """The default `progress`: events go nowhere."""


def no_advance(n: int = 1, **status: Any) -> None:
    """The default `advance` of a loop that reports into a task it is handed: nothing."""


_ids = itertools.count(1)


class Task:
    """One task of an engine: sends `Started` when made, `Advanced` on each call, and
    `Finished` from `finish()` (or on leaving a `with` block without an error)."""

    def __init__(self, progress: Progress, description: str, *, total: int | None, unit: str = "it",
                 done: int = 0) -> None:
        self.progress = progress
        self.description = description
        self.id = next(_ids)
        self.finished = False
        progress(Started(self.id, description, total, unit, done))

    def __call__(self, n: int = 1, **status: Any) -> None:
        self.progress(Advanced(self.id, self.description, n, status))

    advance = __call__

    def finish(self) -> None:
        if not self.finished:
            self.finished = True
            self.progress(Finished(self.id, self.description))

    def __enter__(self) -> "Task":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish()


def start_task(progress: Progress, description: str, *, total: int | None, unit: str = "it", done: int = 0) -> Task:
    """A new task reported to `progress` (see the module docstring)."""
    return Task(progress, description, total=total, unit=unit, done=done)

"""Output folders: every command's output (dataset, training run, report) is written into a
hidden sibling and renamed into place only when complete (`OutputFolder`); an output that is,
contains or lies inside an input is refused; `provenance.json` records how it was made."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from synthmed.errors import UsageError
from synthmed.jsonio import write_json

if TYPE_CHECKING:
    from synthmed.data.resume import RunOptions


def partial_path(out: Path) -> Path:
    """The temporary sibling a command writes into before renaming it to `out`."""
    return out.parent / f".{out.name}.partial"


_OWNED_MARKERS = ("dataset.json", "provenance.json")

# Unfinished folders kept for --resume by outputs abandoned in this process (for the line the
# command line prints on Ctrl-C or SIGTERM).
KEPT: list[Path] = []


def refuse_output_over_inputs(out: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str] | None]) -> None:
    """Refuse (UsageError) an output that is, contains or lies inside any input.

    Paths are compared resolved (symbolic links and `.` followed), so `cd D && ... D -o .`
    is caught too. Called before anything is written: with or without --overwrite, a
    command never changes its inputs."""
    target = Path(out).resolve()
    for given in inputs:
        if given is None:
            continue
        source = Path(given).resolve()
        if target == source:
            problem = "is the input"
        elif target.is_relative_to(source):
            problem = "lies inside the input"
        elif source.is_relative_to(target):
            problem = "contains the input"
        else:
            continue
        raise UsageError(f"-o {out}: the output {problem} {given}; inputs are never changed, choose another output folder")


class OutputFolder:
    """An output folder written atomically: everything goes into `tmp`, a hidden sibling,
    which replaces `out` only on commit. Without `--overwrite` an existing `out` is refused up
    front; with `--resume` an unfinished temporary folder is continued.

        with OutputFolder(out, inputs=[dataset]) as folder:
            write_everything_into(folder.tmp)
        # `out` now exists, complete

    Leaving the `with` block normally commits. Leaving it with an exception (a KeyboardInterrupt
    or SystemExit, as the command line raises on SIGTERM, included) discards `tmp`, except that
    a `resumable` output keeps it for `--resume` unless the error is a UsageError (bad input:
    nothing worth resuming).

    With `continue_existing` (datasets under `--resume`), a finished `out` may be continued
    too: `continues_finished` is then set and the caller seeds the new folder from it.

    `inputs` are every folder and file the command reads: an output that is, contains or lies
    inside one of them is refused before anything is touched.

    A `resumable` output needs `options` (synthmed.data.resume.RunOptions): the command and
    the options that determine the output. They and the digests of `inputs` are recorded in
    `options.json` when the output is started, and `--resume` refuses (naming the first
    difference) an unfinished or finished output recorded with others. `--resume` on a finished
    output that is not continued (`continue_existing` false) sets `finished`: nothing is
    written and the caller reports the output as it is."""

    def __init__(
        self,
        out: str | os.PathLike[str],
        *,
        inputs: Sequence[str | os.PathLike[str] | None],
        overwrite: bool = False,
        resume: bool = False,
        resumable: bool = False,
        continue_existing: bool = False,
        options: "RunOptions | None" = None,
    ) -> None:
        from synthmed.data.resume import check_record, make_record, never_started, write_record

        refuse_output_over_inputs(out, inputs)
        if resumable and options is None:
            raise ValueError("a resumable output needs the options that determine it (options=RunOptions(...))")
        self.out = Path(out)
        self.tmp = partial_path(self.out)
        self.resumable = resumable
        self.resumed = False
        self.continues_finished = False
        self.finished = False
        record = make_record(options, inputs) if resumable else None
        if self.out.exists():
            continuing = resume and resumable and self.out.is_dir()
            if continuing and not self.tmp.exists():
                check_record(self.out, record, out=self.out)
                self.continues_finished = continue_existing
                self.finished = not continue_existing
            elif not overwrite and not (continuing and continue_existing):
                raise UsageError(f"output {self.out} exists; pass --overwrite to replace it")
            if not self.out.is_dir() or (any(self.out.iterdir()) and not any((self.out / m).exists() for m in _OWNED_MARKERS)):
                raise UsageError(f"refusing to replace {self.out}: it does not look like a synthmed output")
        if not self.out.parent.is_dir():
            raise UsageError(f"output {self.out}: parent folder {self.out.parent} does not exist")
        if self.finished:
            return
        if self.tmp.exists():
            if resume and resumable and not never_started(self.tmp):
                check_record(self.tmp, record, out=self.out)
                self.resumed = True
            else:
                shutil.rmtree(self.tmp)  # leftover of an interrupted run that was not resumed
        try:
            self.tmp.mkdir(exist_ok=True)
        except OSError as exc:
            raise UsageError(f"output {self.out}: cannot write in {self.out.parent.resolve()} ({exc.strerror})") from None
        if record is not None and not self.resumed:
            write_record(self.tmp, record)

    def __enter__(self) -> "OutputFolder":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.finished:
            return
        if exc_type is None:
            self.commit()
        else:
            self.abandon(exc)

    def abandon(self, error: BaseException) -> None:
        """After a failure: keep `tmp` for `--resume` when resumable (and the error is not bad
        input), otherwise discard it."""
        if not self.resumable or isinstance(error, UsageError):
            self.discard()
        elif self.tmp.is_dir():
            KEPT.append(self.tmp)

    def write_provenance(self, command: str, parents: Sequence[Path] = (), **extra: Any) -> dict[str, Any]:
        record = provenance(command, parents, **extra)
        write_json(self.tmp / "provenance.json", record)
        return record

    def commit(self) -> Path:
        """Move the finished folder into place; an old `out` is removed only after that."""
        old = None
        if self.out.exists():
            old = self.out.parent / f".{self.out.name}.old-{os.getpid()}"
            os.replace(self.out, old)
        os.replace(self.tmp, self.out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.out

    def discard(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def provenance(command: str, parents: Sequence[Path] = (), **extra: Any) -> dict[str, Any]:
    from synthmed import __version__

    return {
        "command": command,
        "version": __version__,
        "argv": sys.argv[1:],
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "parents": [str(Path(p).resolve()) for p in parents],
        **extra,
    }

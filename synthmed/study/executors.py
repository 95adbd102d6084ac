"""Where the repeats of a study run: in this process (the default), or as Ray tasks on a local
or remote Ray cluster, one GPU (or a fraction of one) each. Both take jobs with `submit` and
hand back finished records one at a time with `next_done`, so the scheduler can start a
dependent repeat (a steps-matched control) as soon as what it needs is done."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any, Callable

from synthmed.errors import UsageError
from synthmed.progress import Progress, no_progress
from synthmed.study.cells import Job, run_job

EXECUTORS = ("inprocess", "ray")


class InProcess:
    """Runs each job when it is asked for the next result (one at a time, in submission order)."""

    def __init__(self, *, scratch: Path | None = None, progress: Progress = no_progress) -> None:
        self.queue: deque[Job] = deque()
        self.scratch = scratch
        self.progress = progress  # each run's training task (epochs)
        self.on_start: Callable[[Job], None] = lambda job: None

    def submit(self, job: Job) -> None:
        self.queue.append(job)

    def busy(self) -> int:
        return len(self.queue)

    def next_done(self) -> tuple[Job, dict[str, Any]]:
        job = self.queue.popleft()
        self.on_start(job)
        return job, run_job(job, scratch=self.scratch, progress=self.progress)

    def close(self) -> None:
        pass


def _remote_run(job: Job) -> dict[str, Any]:
    """The body of a Ray task (module level, so workers import it from synthmed)."""
    return run_job(job)


class RayExecutor:
    """Each job is a Ray task asking for `gpus` GPUs (a fraction shares one) and `cpus` CPUs."""

    def __init__(self, *, address: str | None = None, gpus: float | None = None, cpus: float = 1.0) -> None:
        try:
            import ray
        except ImportError:
            raise UsageError("--executor ray needs Ray: pip install 'synthmed[ray]'") from None
        self.ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise UsageError(f"--address {address}: cannot reach a Ray cluster ({exc})") from None
        if gpus is None:
            gpus = 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0
        self.task = ray.remote(_remote_run).options(num_gpus=gpus, num_cpus=cpus, max_retries=0)
        self.running: dict[Any, Job] = {}
        self.on_start: Callable[[Job], None] = lambda job: None  # unused: see submit

    def submit(self, job: Job) -> None:
        self.running[self.task.remote(job)] = job  # no start event: tasks start when Ray has room

    def busy(self) -> int:
        return len(self.running)

    def next_done(self) -> tuple[Job, dict[str, Any]]:
        (ref,), _ = self.ray.wait(list(self.running), num_returns=1)
        job = self.running.pop(ref)
        try:
            return job, self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, UsageError):  # bad input found on a worker: the same one-line error
                raise type(cause)(*cause.args) from None
            raise

    def close(self) -> None:
        for ref in self.running:
            self.ray.cancel(ref, force=True)
        self.running.clear()
        if self._started:
            self.ray.shutdown()


def make_executor(name: str, *, address: str | None, gpus: float | None, scratch: Path | None,
                  progress: Progress = no_progress) -> InProcess | RayExecutor:
    if name not in EXECUTORS:
        raise UsageError(f"--executor {name!r}: expected one of {', '.join(EXECUTORS)}")
    if name == "ray":
        return RayExecutor(address=address, gpus=gpus)
    if address is not None or gpus is not None:
        raise UsageError("--address and --gpus-per-cell are for --executor ray")
    return InProcess(scratch=scratch, progress=progress)

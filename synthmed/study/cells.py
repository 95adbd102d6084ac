"""One repeat of one cell, through the commands' library functions: `plan_mix`/`write_mix`,
`train_run`, `evaluate_run`; and the cache of finished repeats (one JSON file each, named by a
digest of every input, written atomically, so a SIGKILL loses at most the repeat running)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from synthmed.progress import Progress, no_progress
from synthmed.study.grid import Cell

TRAIN_FACTS = ("steps", "epochs_run", "best_epoch", "val_loss")
HISTORY_KEEP = ("epoch", "steps", "train_loss", "val_loss", "val_accuracy", "seconds", "train_seconds")


@dataclass(frozen=True)
class Job:
    """Everything one repeat needs (picklable: Ray ships it to a worker)."""

    cell: Cell
    repeat: int
    seed: int
    key: str
    dataset: str  # the real dataset folder
    source: str | None  # the synthetic folder of the cell's source
    settings: dict[str, Any] = field(default_factory=dict)  # TrainSettings keyword arguments
    splits: tuple[str, ...] = ("test",)
    device: str = "auto"


def job_key(*, version: str, dataset: str, source: str | None, cell: Cell, settings: dict[str, Any], seed: int,
            weights: str | None) -> str:
    """Digest of the inputs of one repeat: dataset and source digests, the cell's options, the
    training settings (with a resolved step budget), the seed and the synthmed version."""
    from synthmed.study.sources import digest

    mix = {k: v for k, v in asdict(cell.mix).items() if k != "source"}
    options = {k: v for k, v in settings.items() if k != "weights"}
    return digest({"version": version, "dataset": dataset, "source": source, "mix": mix, "augment": cell.augment,
                   "classifier": cell.classifier, "train": options, "weights": weights, "seed": seed})


def flatten_report(report: dict[str, Any]) -> dict[str, float | None]:
    """One repeat's evaluation as metric -> value, per-class values as `f1[CLASS]`."""
    values = {metric: stat["values"][0] for metric, stat in report["summary"].items()}
    for name, stats in report["per_class"].items():
        for stat, summary in stats.items():
            values[f"{stat}[{name}]"] = summary["values"][0]
    return values


def run_job(job: Job, *, scratch: Path | None = None, progress: Progress = no_progress) -> dict[str, Any]:
    """mix -> train (one run) -> evaluate on each split; returns the record the cache keeps.
    `progress` receives the training task (epochs) of the run."""
    import torch

    from synthmed.data import Dataset
    from synthmed.devices import resolve_device
    from synthmed.evaluate.scoring import evaluate_run
    from synthmed.mix.plan import plan_mix, write_mix
    from synthmed.train.run import train_run
    from synthmed.train.settings import TrainSettings

    started = time.perf_counter()
    device = resolve_device(job.device)
    mix = job.cell.mix
    with tempfile.TemporaryDirectory(prefix="cell-", dir=scratch) as tmp:
        real = Dataset.open(job.dataset)
        synthetic = [Dataset.open(job.source)] if job.source else []
        plan = plan_mix(real, synthetic, real_spec=mix.real, synthetic_spec=mix.synthetic,
                        synthetic_classes=list(mix.synthetic_classes) if mix.synthetic_classes else None,
                        balance=mix.balance, oversample_spec=mix.oversample, seed=job.seed)
        summary = write_mix(plan, Path(tmp) / "mix")
        run = Path(tmp) / "run"
        trained = train_run(Path(tmp) / "mix", run, TrainSettings(**job.settings), repeats=1, seed=job.seed,
                            device=device, progress=progress, curves=False)
        metrics = {split: flatten_report(evaluate_run(run, job.dataset, split=split, device=device).report)
                   for split in job.splits}
        with open(run / "history.csv", newline="", encoding="utf-8") as handle:
            history = [{k: float(row[k]) for k in HISTORY_KEEP} for row in csv.DictReader(handle)]
    (only,) = trained["runs"]
    return {
        "key": job.key, "cell": job.cell.id, "repeat": job.repeat, "seed": job.seed,
        "metrics": metrics,
        "train": {k: only[k] for k in TRAIN_FACTS} | {"train_images": trained["train_images"]},
        "mix": {label: {"real": c["real_kept"], "synthetic": c["synthetic_added"], "duplicates": c["duplicates_added"]}
                for label, c in summary["per_class"].items()},
        "history": history,
        "seconds": round(time.perf_counter() - started, 3),
        # Not in the key, yet the last digits of a CPU result depend on them: a repeat is
        # byte-identical to another only on the same device and thread count.
        "ran_on": {"device": str(device), "torch_threads": torch.get_num_threads()},
    }


class Cache:
    """OUT/cache/<key>.json per finished repeat."""

    def __init__(self, root: Path, notify: Callable[[str], None] = lambda text: None, *, read_only: bool = False) -> None:
        self.root = Path(root)
        self.notify = notify
        self.read_only = read_only  # a dry run reads the cache and changes nothing
        self._memory: dict[str, dict[str, Any]] = {}

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, job: Job) -> dict[str, Any] | None:
        """The finished record, or None; a corrupt or incomplete file is reported and dropped."""
        if job.key in self._memory:
            return self._memory[job.key]
        path = self.path(job.key)
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            problem = None if record.get("key") == job.key else "it belongs to another key"
            missing = [s for s in job.splits if s not in record.get("metrics", {})]
            if problem is None and missing:
                problem = f"it lacks the {missing[0]} split"
            if problem is None and not all(k in record.get("train", {}) for k in TRAIN_FACTS):
                problem = "it lacks training facts"
        except (ValueError, AttributeError, TypeError) as exc:
            problem = f"it is not valid JSON ({exc})"
        if problem is not None:
            if self.read_only:
                return None
            self.notify(f"cached cell {path.name} ({job.cell.label()}, repeat {job.repeat}) is unusable: {problem}; "
                        "computing it again")
            path.unlink(missing_ok=True)
            return None
        self._memory[job.key] = record
        return record

    def put(self, record: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.path(record["key"])
        scratch = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        scratch.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        os.replace(scratch, target)
        self._memory[record["key"]] = record


def clear_stale_scratch(root: Path) -> None:
    """Remove scratch folders of processes that are gone (a SIGKILL leaves them behind)."""
    if not root.is_dir():
        return
    for folder in root.iterdir():
        pid = folder.name.split("-")[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

"""Synthetic sources of a study: a folder as it is, or one made from the real train split by a
generator (`generate`), an augmentation policy (`augment`) or an autoencoder (`interpolate`);
and the embedded sample data. Made folders live in OUT/sources/, named by a digest of what made
them, so a rerun reuses them and an extended study that asks for more makes a new one."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any, Callable

from synthmed.progress import Progress, no_progress
from synthmed.seeding import derive_seed
from synthmed.study.schema import SourceSpec

Notify = Callable[[str], None]


def digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def dataset_digest(path: Path) -> str:
    """Content digest of a dataset folder: metadata.csv (which holds every file's sha256) and
    dataset.json without its provenance (a time stamp)."""
    info = json.loads((Path(path) / "dataset.json").read_text(encoding="utf-8"))
    info.pop("provenance", None)
    content = hashlib.sha256((Path(path) / "metadata.csv").read_bytes()).hexdigest()
    return digest({"metadata": content, "info": info})


def sample_key(sample: dict[str, Any]) -> str:
    return f"sample-{sample['size']}px-x{sample['scale']:g}-seed{sample['seed']}"


def write_sample(sample: dict[str, Any], out: Path) -> Path:
    from synthmed.data.sample import write_sample_dataset

    return write_sample_dataset(out, size=sample["size"], scale=sample["scale"], seed=sample["seed"])


def pool_counts_per_class(counts: dict[str, int], pool: float) -> dict[str, int]:
    return {c: math.ceil(n * pool) for c, n in counts.items() if n > 0}


def source_folder(root: Path, spec: SourceSpec, real_digest: str, counts: dict[str, int], seed: int) -> Path:
    from synthmed import __version__

    selection = {"select_by": spec.select_by, "check_every": spec.check_every, "patience": spec.patience}
    key = digest({"kind": spec.kind, "target": spec.target, "args": spec.args, "fit_epochs": spec.fit_epochs,
                  **(selection if spec.select_by else {}), "counts": counts, "seed": seed, "dataset": real_digest, "version": __version__})
    return root / f"{spec.name}-{key[:12]}"


def make_source(spec: SourceSpec, real_path: Path, out: Path, counts: dict[str, int], *, seed: int, device: str,
                notify: Notify = lambda text: None, progress: Progress = no_progress) -> Path:
    """Make the folder (atomically: built aside, renamed into place; a folder another shard
    finished first is kept). `counts`: images per class wanted."""
    if (out / "dataset.json").is_file():
        return out
    build = out.parent / f".build-{os.getpid()}-{out.name}"
    shutil.rmtree(build, ignore_errors=True)
    build.mkdir(parents=True)
    notify(f"making source {spec.name!r} ({spec.kind} {spec.target}): "
           + ", ".join(f"{c} {n}" for c, n in counts.items()))
    try:
        _make(spec, Path(real_path), build / "data", counts, seed=seed, device=device, progress=progress)
        try:
            os.rename(build / "data", out)
        except OSError:
            if not (out / "dataset.json").is_file():
                raise
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return out


def _class_request(spec: SourceSpec, real: Any, out: Path, counts: dict[str, int], *, seed: int, device: str) -> Any:
    """The `generate` request a generator source is made by."""
    from synthmed.generate.job import ClassRequest
    from synthmed.generate.plan import generator_entry

    classes = [c for c in real.classes if counts.get(c)]
    return ClassRequest(dataset=real, entry=generator_entry(spec.target), out=out, args=spec.args, classes=classes,
                        counts={c: counts[c] for c in classes}, seed=derive_seed(seed, "source", spec.name),
                        device_spec=device, fit_epochs=spec.fit_epochs, select_by=spec.select_by,
                        check_every=spec.check_every, patience=spec.patience)


def estimate_generator_source(spec: SourceSpec, real_path: Path, counts: dict[str, int], *, seed: int,
                              device: str) -> float | None:
    """Seconds to fit and sample a generator source, from the generator's own estimate (a few
    timed optimizer and sampling steps, scaled to the source's classes, counts and epochs); None
    for a generator that cannot be timed so."""
    from synthmed.data import Dataset
    from synthmed.devices import resolve_device
    from synthmed.generate.job import estimate_class_request
    from synthmed.generate.sampling import fit_rows

    request = _class_request(spec, Dataset.open(real_path), Path(os.devnull), counts, seed=seed, device=device)
    rows = fit_rows(request.dataset, request.classes, request.entry.info.min_images)
    estimate = estimate_class_request(request, None, rows, resolve_device(device))
    return None if estimate is None else estimate["total"]


def _make(spec: SourceSpec, real_path: Path, out: Path, counts: dict[str, int], *, seed: int, device: str,
          progress: Progress) -> None:
    from synthmed.data import Dataset

    real = Dataset.open(real_path)
    classes = [c for c in real.classes if counts.get(c)]
    source_seed = derive_seed(seed, "source", spec.name)
    if spec.kind == "generator":
        from synthmed.generate.job import run_class_generation

        run_class_generation(_class_request(spec, real, out, counts, seed=seed, device=device), progress=progress)
    elif spec.kind == "augment":
        from synthmed.augment.job import augment_dataset
        from synthmed.devices import resolve_device
        from synthmed.generate.plan import real_train_counts

        real_counts = real_train_counts(real)
        largest = max(real_counts.values())
        # Topping classes up to the largest makes exactly what balancing asks for; other amounts
        # take whole copies of every image of the classes that need some.
        balance = all(counts[c] <= largest - real_counts[c] for c in classes)
        copies = None if balance else max(math.ceil(counts[c] / real_counts[c]) for c in classes)
        augment_dataset(real, out, policy_spec=spec.target, copies=copies, balance=balance, classes=classes,
                        only_augmented=True, seed=source_seed, device=resolve_device(device), progress=progress)
    elif spec.kind == "interpolate":
        from synthmed.interpolate.job import InterpolationSettings, execute, prepare

        settings = InterpolationSettings(dataset=real_path, out=out, autoencoder=spec.target,
                                         autoencoder_args=spec.args, fit_epochs=spec.fit_epochs or 20,
                                         per_class=max(counts.values()), classes=classes, seed=source_seed,
                                         device=device)
        execute(prepare(settings), progress=progress)
    else:
        raise ValueError(f"source kind {spec.kind!r} is not made")


def folder_pool(path: Path) -> dict[str, int]:
    """Per class, the train rows of a synthetic folder `mix` can draw from."""
    from synthmed.data import Dataset

    data = Dataset.open(path)
    counts = {c: 0 for c in data.classes}
    for row in data.select(split="train"):
        if row["source"] != "real":
            counts[row["label"]] += 1
    return counts

"""How long a fit and its sampling will take: a few optimizer and sampling steps measured on
the chosen device, scaled to the whole job (built-in fitted generators only)."""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from synthmed.data import Dataset, Row

MEASURED_STEPS = 3  # timed optimizer steps, after one untimed warm-up step
WARN_SECONDS = 3600  # a CPU job estimated above this gets a warning


def estimate_seconds(generator: Any, dataset: Dataset, rows: Sequence[Row] | None, *, epochs: int | None,
                     images_to_sample: int, batch_size: int, device: Any, seed: int,
                     check_images: int = 0) -> dict[str, Any] | None:
    """{"fit": s or None, "sample": s, "checks": s, "total": s} for a `FittedGenerator`, or None
    for any other generator. `rows` None: no fit (a saved model); else `generator` is unfitted
    and is left unfitted (a scratch copy of its networks is timed). `check_images`: the images
    the fit's `--select-by` checks sample in all, timed at the sampling rate."""
    import copy

    import torch

    from synthmed.batches import to_unit_float
    from synthmed.generate.fitted import MIN_BATCH, FittedGenerator

    if not isinstance(generator, FittedGenerator):
        return None
    probe = copy.deepcopy(generator)
    fit_seconds = None
    if rows is not None:
        images = dataset.load_images(list(rows)[: probe.batch_size * 2])
        labels = dataset.label_indices(list(rows))
        probe.arch = {"channels": int(images.shape[1]), "image_size": list(images.shape[2:]),
                      "num_classes": len(dataset.classes), "fitted_classes": sorted({int(k) for k in labels}),
                      **probe._arch_extra(tuple(images.shape[2:]))}
        torch.manual_seed(seed)
        probe._build(probe.arch)
        probe.net.to(device)
        probe._training_setup(device)
        batch = to_unit_float(images[: max(MIN_BATCH, min(probe.batch_size, len(images)))], device=device) * 2 - 1
        targets = torch.from_numpy(np.asarray(labels[: len(batch)], dtype=np.int64)).to(device)
        group = probe._groups(np.asarray(labels))[0][0]
        probe._train_step(group, batch, targets, device)  # warm-up
        _sync(device)
        began = time.perf_counter()
        for _ in range(MEASURED_STEPS):
            probe._train_step(group, batch, targets, device)
        _sync(device)
        per_step = (time.perf_counter() - began) / MEASURED_STEPS
        fit_seconds = per_step * probe.fit_steps(np.asarray(labels), int(epochs))
        probe.net.eval()
    per_image = 0.0
    if (images_to_sample or check_images) and probe.arch is not None:
        count = min(batch_size, max(images_to_sample, check_images), 8)
        began = time.perf_counter()
        probe.sample_seeds(probe.arch["fitted_classes"][0], list(range(count)), device=device)
        _sync(device)
        per_image = (time.perf_counter() - began) / count
    sample_seconds, check_seconds = per_image * images_to_sample, per_image * check_images
    return {"fit": fit_seconds, "sample": sample_seconds, "checks": check_seconds,
            "total": (fit_seconds or 0.0) + sample_seconds + check_seconds}


def _sync(device: Any) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def describe(estimate: dict[str, Any], device: Any) -> tuple[str, str | None]:
    """(one line, a warning or None) for an estimate."""
    import torch

    parts = []
    if estimate["fit"] is not None:
        parts.append(f"fitting ~{_duration(estimate['fit'])}")
    if estimate.get("checks"):
        parts.append(f"--select-by checks ~{_duration(estimate['checks'])} at most")
    if estimate["sample"] or estimate["fit"] is None:
        parts.append(f"sampling ~{_duration(estimate['sample'])}")
    line = f"estimated time on {device}: " + ", ".join(parts) + " (from a few measured steps)"
    warning = None
    if torch.device(device).type == "cpu" and estimate["total"] > WARN_SECONDS:
        warning = (f"this job is estimated at {_duration(estimate['total'])} on the CPU; consider --fit-minutes, "
                   "a smaller preset or width, or a GPU")
    return line, warning


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"

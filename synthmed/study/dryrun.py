"""`synthmed study --dry-run`: the cells, how many repeats are left, and a time estimate from a
short calibration (a few optimizer steps of each classifier, one fitting epoch of each source
to make, measured here) — written into a temporary folder, never into OUT."""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from synthmed.study.cells import Job, run_job
from synthmed.study.grid import CONTROL_NAMES, Cell, Mix, asked_counts, kept_counts
from synthmed.study.validate import settings_for

CALIBRATION_STEPS = 20


def _calibrate_classifier(context: Any, classifier: str, staging: Path) -> dict[str, float]:
    """A few steps to warm up (imports, allocation), then CALIBRATION_STEPS measured."""
    cell = Cell("reference", Mix(), "none", classifier)
    for steps in (2, CALIBRATION_STEPS):
        settings = settings_for(context.study, classifier, "none") | {"epochs": 1, "max_steps": steps}
        job = Job(cell, 1, 0, "calibration", str(context.real_path), None, settings, (context.study.split,),
                  context.device)
        record = run_job(job, scratch=staging)
    (epoch,) = record["history"]
    return {"seconds_per_step": epoch["train_seconds"] / max(epoch["steps"], 1),
            "seconds_per_val_pass": epoch["seconds"] - epoch["train_seconds"],
            "seconds_per_repeat_overhead": max(record["seconds"] - epoch["seconds"], 0.0)}


def _calibrate_source(context: Any, name: str, staging: Path) -> float:
    """Seconds to make the source. A fitted generator times a few of its own steps on the
    source's real classes and counts (two whole short fits differ by one epoch only, which on a
    loaded machine drowns in their fixed costs: the demo's 4-step epochs read as 164 s each and
    its 5-minute fit as 13 hours); otherwise one fitting epoch is measured, times its epochs."""
    from synthmed.study.sources import estimate_generator_source, make_source

    spec = context.study.sources[name]
    if spec.kind == "generator":
        seconds = estimate_generator_source(spec, context.real_path, context.source_counts(name),
                                            seed=context.study.seed, device=context.device)
        if seconds is not None:
            return seconds
    epochs = spec.fit_epochs
    if spec.kind == "generator":
        from synthmed.generate.plan import generator_entry

        epochs = epochs or generator_entry(spec.target).info.fit_epochs
    elif spec.kind == "interpolate":
        epochs = epochs or 20
    counts = {c: 1 for c, n in context.real_counts.items() if n}
    seconds = []
    for fit in (1, 2):  # the difference is one epoch; the rest is what a fit costs whatever its length
        started = time.perf_counter()
        short = replace(spec, fit_epochs=fit) if spec.kind in ("generator", "interpolate") else spec
        make_source(short, context.real_path, staging / f"source-{name}-{fit}", counts, seed=context.study.seed,
                    device=context.device)
        seconds.append(time.perf_counter() - started)
        if epochs is None:
            return seconds[0]
    per_epoch = max(seconds[1] - seconds[0], 0.0)
    return max(seconds[0] - per_epoch, 0.0) + per_epoch * epochs


def _estimate(context: Any, cell: Cell, timing: dict[str, float]) -> float:
    """Seconds of one repeat if it runs to its epochs cap (early stopping usually ends sooner)."""
    counts = context.real_counts
    settings = settings_for(context.study, cell.classifier, cell.augment)
    scenario = context.grid.cells[cell.steps_of] if cell.steps_of else cell
    images = sum(kept_counts(scenario.mix.real, counts).values()) + sum(asked_counts(scenario.mix, counts).values())
    if scenario.mix.oversample:
        images += sum(int(part.split("=")[1]) for part in scenario.mix.oversample.split(","))
    per_epoch = max(1, math.ceil(images / settings.get("batch_size", 32)))
    epochs = settings.get("epochs", 20)
    steps = min(epochs * per_epoch, settings.get("max_steps") or epochs * per_epoch)
    return (timing["seconds_per_repeat_overhead"] + steps * timing["seconds_per_step"]
            + math.ceil(steps / per_epoch) * timing["seconds_per_val_pass"])


def dry_run_summary(context: Any, staging: Path, part: tuple[int, int], *,
                    message: Callable[[str, str], None]) -> dict[str, Any]:
    from synthmed.study.cells import Cache

    grid, study = context.grid, context.study
    units = grid.units()
    mine = {cell_id for unit in units[part[0]::part[1]] for cell_id in unit}
    cache = Cache(context.out / "cache", read_only=True)
    from synthmed.study.run import make_sources

    make_sources(context, set(context.study.sources), notify=lambda text: None, must_exist=True)  # made earlier
    message("note", "calibrating: a few optimizer steps of each classifier")
    timing = {name: _calibrate_classifier(context, name, staging)
              for name in sorted({grid.cells[c].classifier for c in mine})}
    made = sorted({grid.cells[c].mix.source for c in mine if grid.cells[c].mix.source} - set(context.source_paths))
    source_seconds = {}
    for name in made:
        message("note", f"calibrating: the time to make source {name!r}")
        source_seconds[name] = _calibrate_source(context, name, staging)
    rows, total, left = [], 0.0, 0
    for cell_id in [c for c in grid.cells if c in mine]:
        cell = grid.cells[cell_id]
        cached = 0
        for r in range(1, study.repeats + 1):
            job = context.job(cell_id, r, cache)
            cached += bool(job is not None and cache.path(job.key).is_file())
        seconds = _estimate(context, cell, timing[cell.classifier]) * (study.repeats - cached)
        total += seconds
        left += study.repeats - cached
        rows.append({"cell": cell.label(), "role": CONTROL_NAMES.get(cell.role, cell.role), "augment": cell.augment,
                     "classifier": cell.classifier, "repeats": study.repeats, "cached": cached,
                     "estimate_seconds": round(seconds, 1)})
    total += sum(source_seconds.values())
    probes = len(grid.selective["probes"]) if grid.selective else 0
    return {
        "dry_run": True, "study": study.name, "shard": f"{part[0] + 1}/{part[1]}", "cells": rows,
        "count": len(rows), "repeats_left": left, "estimate_seconds": round(total, 1),
        "sources_seconds": {k: round(v, 1) for k, v in source_seconds.items()},
        "calibration": timing, "warnings": context.warnings,
        "note": "upper bound: every repeat runs to its epochs cap; early stopping usually ends sooner"
                + ("; selective augmentation adds up to 3 cells once its probes are done" if probes else ""),
    }

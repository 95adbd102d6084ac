"""What a finished study writes: results.csv (long form), summary.json, report.md and figures,
from the cached repeats. Files are written aside and moved into OUT when all are complete."""

from __future__ import annotations

import csv
import json
import os
import platform
import shutil
from pathlib import Path
from typing import Any

from synthmed.errors import UsageError
from synthmed.stats import summarize
from synthmed.study.grid import CONTROL_NAMES, Cell
from synthmed.study.stats import gain, holm, min_wilcoxon_p, overall, paired, verdict

RESULT_COLUMNS = ("scenario", "cell", "role", "real", "synthetic", "synthetic_classes", "source", "oversample",
                  "augment", "classifier", "split", "repeat", "seed", "metric", "value")
TRAINING = "training"  # the split column of steps, epochs_run, best_epoch, val_loss (best)


def collect(context: Any, cache: Any) -> dict[str, list[dict[str, Any]]]:
    """Every repeat of every cell from the cache; a missing one is an error (run it first)."""
    from synthmed.study.run import resolve_from_cache

    grid = context.grid
    if grid.selective and grid.selective.get("chosen") is None:
        resolve_from_cache(context, cache)
    records, missing, total = {}, 0, 0
    for cell_id in grid.cells:
        found = []
        for r in range(1, context.study.repeats + 1):
            total += 1
            job = context.job(cell_id, r, cache)
            record = cache.get(job) if job is not None else None
            if record is None:
                missing += 1
            found.append(record)
        records[cell_id] = found
    if grid.selective and grid.selective.get("chosen") is None:
        missing += 1
    if missing:
        raise UsageError(f"{missing} of {total} cell repeats are not in {context.out / 'cache'} yet; run the "
                         "missing shards (or the study without --report-only) first")
    return records


def minority_classes(context: Any) -> list[str]:
    if context.study.minority:
        return context.study.minority
    largest = max(context.real_counts.values())
    return [c for c, n in context.real_counts.items() if n < largest / 2]


def axis_values(cell: Cell) -> dict[str, Any]:
    mix = cell.mix
    return {"real": mix.real, "synthetic": "balance" if mix.balance else mix.synthetic,
            "synthetic_classes": mix.synthetic_classes, "source": mix.source, "augment": cell.augment,
            "classifier": cell.classifier}


def results_rows(context: Any, records: dict[str, list[dict]]) -> list[dict[str, Any]]:
    rows = []
    for cell_id, cell in context.grid.cells.items():
        axes = axis_values(cell)
        base = {"scenario": cell.label(), "cell": cell_id, "role": cell.role, **axes,
                "synthetic": axes["synthetic"] or "", "source": axes["source"] or "",
                "synthetic_classes": ",".join(axes["synthetic_classes"] or ()) or ("all" if cell.mix.source else ""),
                "oversample": cell.mix.oversample or ""}
        for record in records[cell_id]:
            facts = {TRAINING: record["train"], **record["metrics"]}
            for split in sorted(facts):
                for metric in sorted(facts[split]):
                    value = facts[split][metric]
                    rows.append({**base, "split": split, "repeat": record["repeat"], "seed": record["seed"],
                                 "metric": metric, "value": "" if value is None else repr(float(value))})
    return rows


def values_of(records: list[dict], metric: str, split: str) -> list[float | None]:
    source = (lambda r: r["train"]) if split == TRAINING else (lambda r: r["metrics"].get(split, {}))
    return [source(r).get(metric) for r in records]


def compare(context: Any, records: dict[str, list[dict]], metrics: list[str]) -> list[dict[str, Any]]:
    """Every scenario against each of its controls, per metric; Holm across the scenarios of a
    (control kind, metric) family; a verdict on each."""
    study, grid = context.study, context.grid
    found = []
    for scenario, controls in grid.controls.items():
        for kind, control in controls.items():
            for metric in metrics:
                split = TRAINING if metric == "steps" else study.split
                result = paired(values_of(records[scenario], metric, split), values_of(records[control], metric, split),
                                metric=metric, seed=study.seed)
                found.append({"scenario": scenario, "control": control, "kind": kind, "metric": metric, **result})
    for family in {(c["kind"], c["metric"]) for c in found}:
        members = [c for c in found if (c["kind"], c["metric"]) == family]
        for comparison, adjusted in zip(members, holm([c["p"] for c in members])):
            comparison["p_holm"] = adjusted
            comparison["verdict"] = verdict(comparison, study.alpha)
    return found


def verdicts(context: Any, comparisons: list[dict]) -> dict[str, dict[str, Any]]:
    study, grid = context.study, context.grid
    result = {}
    for scenario in grid.scenarios:
        mine = {c["kind"]: c for c in comparisons if c["scenario"] == scenario and c["metric"] == study.primary}
        if not grid.cells[scenario].mix.has_synthetic:
            continue
        by_kind = {kind: c["verdict"] for kind, c in mine.items()}
        flags = []
        if "without" in mine and "steps" in mine and gain(mine["without"]) and not gain(mine["steps"]):
            flags.append("its gain over the same real images vanishes against the control trained for the same "
                         "number of optimizer steps")
        if "oversample" in mine and gain(mine.get("without", {})) and not gain(mine["oversample"]):
            flags.append("duplicated real images do as well")
        result[scenario] = {"label": grid.cells[scenario].label(), "overall": overall(by_kind), "by_control": by_kind,
                            "flags": flags}
    return result


def notes(context: Any) -> list[str]:
    study = context.study
    found = [f"Not run: {label}, which leaves a class without train images." for label in context.grid.skipped]
    smallest = min_wilcoxon_p(study.repeats)
    if smallest >= study.alpha:
        need = next(n for n in range(1, 64) if min_wilcoxon_p(n) < study.alpha)
        found.append(f"With {study.repeats} paired repeats the smallest two-sided Wilcoxon p-value is "
                     f"{smallest:.3g}, not below alpha = {study.alpha}: no comparison can reach 'helps' or 'hurts'. "
                     f"Use at least {need} repeats (more, with Holm's correction across scenarios).")
    return found


def published_for(context: Any, cell: Cell) -> list[dict[str, Any]]:
    """Published numbers whose `where` matches this cell: {source (1-based entry), metric, value}."""
    if cell.mix.oversample or cell.steps_of:
        return []
    axes = axis_values(cell)
    return [{"source": i + 1, "metric": entry["metric"], "value": item["value"]}
            for i, entry in enumerate(context.study.published)
            for item in entry["values"] if all(axes.get(k) == v for k, v in item["where"].items())]


def cell_summaries(context: Any, records: dict[str, list[dict]], metrics: list[str]) -> list[dict[str, Any]]:
    study = context.study
    rows = []
    for cell_id, cell in context.grid.cells.items():
        rows.append({
            "id": cell_id, "label": cell.label(), "role": cell.role, **axis_values(cell),
            "oversample": cell.mix.oversample, "steps_of": cell.steps_of,
            "metrics": {m: summarize(values_of(records[cell_id], m, study.split)) for m in metrics},
            "training": {m: summarize(values_of(records[cell_id], m, TRAINING)) for m in ("steps", "epochs_run", "best_epoch")},
            "val": ({m: summarize(values_of(records[cell_id], m, "val")) for m in (study.primary,)}
                    if "val" in context.grid.splits[cell_id] else None),
            "published": published_for(context, cell),
        })
    return rows


def versions() -> dict[str, str]:
    import numpy
    import scipy
    import torch

    from synthmed import __version__

    return {"synthmed": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "scipy": scipy.__version__}


def report_metrics(context: Any) -> list[str]:
    from synthmed.evaluate.metrics import METRICS

    primary = context.study.primary
    per_class = [f"{stat}[{c}]" for c in minority_classes(context) for stat in ("f1", "recall")]
    return [primary, *(m for m in METRICS if m != primary), *per_class, "steps"]


def write_outputs(context: Any, records: dict[str, list[dict]], *, command: str) -> dict[str, Any]:
    from synthmed.study.figures import draw_figures
    from synthmed.study.markdown import render_report

    from synthmed.study.sources import digest

    out, study = context.out, context.study
    # A rerun with every repeat cached writes nothing new: the same records give the same report.
    key = digest({"records": sorted(r["key"] for found in records.values() for r in found), "study": study.text,
                  "quick": study.quick, "version": versions()["synthmed"]})
    previous = _previous(out, key)
    if previous is not None:
        return previous
    metrics = report_metrics(context)
    comparisons = compare(context, records, metrics)
    summary = {
        "study": study.name, "file": str(study.file), "command": command, "versions": versions(),
        "dataset": {"path": str(context.real_path), "digest": context.real_digest, "train_counts": context.real_counts},
        "split": study.split, "primary": study.primary, "alpha": study.alpha, "repeats": study.repeats,
        "minority": minority_classes(context), "warnings": context.warnings, "notes": notes(context),
        "cells": cell_summaries(context, records, metrics), "comparisons": comparisons,
        "verdicts": verdicts(context, comparisons), "selective": _selective(context),
        "published": [{"label": e["label"], "metric": e["metric"]} for e in study.published],  # cells cite them by number
        "control_names": CONTROL_NAMES, "report_key": key,
    }
    staging = out / f".report-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "figures").mkdir(parents=True)
    try:
        summary["figures"] = [str(p.relative_to(staging)) for p in draw_figures(context, records, staging / "figures")]
        (staging / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        (staging / "report.md").write_text(render_report(summary), encoding="utf-8")
        with open(staging / "results.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=RESULT_COLUMNS, extrasaction="ignore", lineterminator="\n")
            writer.writeheader()
            writer.writerows(results_rows(context, records))
        shutil.rmtree(out / "figures", ignore_errors=True)
        os.replace(staging / "figures", out / "figures")
        for name in ("summary.json", "report.md", "results.csv"):
            os.replace(staging / name, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return summary


def _previous(out: Path, key: str) -> dict[str, Any] | None:
    """The summary already in OUT when it was made from exactly these records."""
    try:
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    complete = all((out / name).is_file() for name in ("report.md", "results.csv", *summary.get("figures", [])))
    return summary if summary.get("report_key") == key and complete else None


def _selective(context: Any) -> dict[str, Any] | None:
    sel = context.grid.selective
    if not sel:
        return None
    return {"candidates": sel["candidates"], "chosen": sel["chosen"], "cell": sel.get("cell"),
            "metric": context.study.primary, "split": "val",
            "evidence": {label: {k: v for k, v in e.items()} for label, e in sel.get("evidence", {}).items()}}

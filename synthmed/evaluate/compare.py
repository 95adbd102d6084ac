"""Comparing evaluation reports: the same metrics side by side, checked to be on the same images.

A comparison only means something when every report scored the same test images, so the
reports' `split_digest` (ids and file digests of the rows scored) must agree; reports
without one (made before it was recorded) are compared with a warning. The minority class
is the one with the fewest images in the first report's `train_support` (what its run was
trained on), ties broken by fewest evaluated images, unless one is named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from synthmed.errors import UsageError
from synthmed.evaluate.metrics import METRICS
from synthmed.evaluate.report import read_report

DEFAULT_METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "cross_entropy", "auroc_macro")
STAT_KEYS = ("median", "q1", "q3", "n")


@dataclass
class Comparison:
    metrics: list[str]
    minority_class: str | None
    minority_from: str | None  # the report whose train counts named it ("given" when named)
    reports: list[dict[str, Any]]  # one record per report (see `compare_reports`)
    same_images: bool | None  # None: a report does not record its images
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "minority_class": self.minority_class, "minority_from": self.minority_from,
                "same_images": self.same_images, "warnings": self.warnings, "reports": self.reports}


def _stat(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    if not summary:
        return None
    return {key: summary.get(key) for key in STAT_KEYS} | {"values": summary.get("values", [])}


def _label(path: Path) -> str:
    return Path(path).name or str(path)


def compare_reports(paths: Sequence[Path], metrics: Sequence[str] = DEFAULT_METRICS, *, minority: str | None = None,
                    allow_different_images: bool = False) -> Comparison:
    """Reports side by side. Each record: report (folder name), path, model, repeats, split,
    images, split_digest, metrics {name: {median, q1, q3, n, values}} and minority_f1 (same
    layout). Reports on different images are refused unless `allow_different_images`, which
    turns that into a warning."""
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise UsageError(f"--metric {unknown[0]!r}: expected one of {', '.join(METRICS)}")
    if not paths:
        raise UsageError("compare: give at least one REPORT folder")
    reports = [read_report(path) for path in paths]
    same, warnings = _check_same_images(paths, reports, allow_different_images)
    chosen, source = _minority(paths, reports, minority)
    records = []
    for path, report in zip(paths, reports):
        per_class = report.get("per_class", {})
        records.append({
            "report": _label(path), "path": str(path), "model": report.get("model"),
            "repeats": int(report.get("repeats", 0)), "split": report.get("split"), "images": report.get("images"),
            "split_digest": report.get("split_digest"),
            "metrics": {m: _stat(report["summary"].get(m)) for m in metrics},
            "minority_f1": _stat(per_class.get(chosen, {}).get("f1")) if chosen else None,
        })
    return Comparison(list(metrics), chosen, source, records, same, warnings)


def _check_same_images(paths: Sequence[Path], reports: list[dict[str, Any]], allow: bool
                       ) -> tuple[bool | None, list[str]]:
    digests = {_label(p): (r.get("split"), r.get("images"), r.get("split_digest")) for p, r in zip(paths, reports)}
    unknown = [name for name, (_, _, digest) in digests.items() if not digest]
    warnings = []
    if unknown:
        warnings.append(f"{', '.join(unknown)}: made before reports recorded their images; cannot check that "
                        "every report scored the same images (rerun `synthmed evaluate`)")
    known = {name: d for name, d in digests.items() if d[2]}
    if len({d[2] for d in known.values()}) > 1:
        first, *others = known.items()
        other = next((name, d) for name, d in others if d[2] != first[1][2])
        message = (f"reports scored different images: {first[0]} ({first[1][0]} split, {first[1][1]} images) and "
                   f"{other[0]} ({other[1][0]} split, {other[1][1]} images); their numbers are not comparable")
        if not allow:
            raise UsageError(f"{message}; evaluate every run on the same split of the same dataset "
                             "(or pass --allow-different-images)")
        warnings.append(message)
        return False, warnings
    return (None if unknown else True), warnings


def _minority(paths: Sequence[Path], reports: list[dict[str, Any]], given: str | None) -> tuple[str | None, str | None]:
    classes = reports[0].get("classes") or list(reports[0].get("support", {}))
    if given is not None:
        if given not in classes:
            raise UsageError(f"--minority {given!r}: not a class of {paths[0]}; classes are {', '.join(classes)}")
        return given, "given"
    support = reports[0].get("support") or {}
    trained = reports[0].get("train_support") or {}
    if not support:
        return None, None
    smallest = min(support, key=lambda name: (trained.get(name, 0) if trained else 0, support[name], name))
    return smallest, f"{_label(paths[0])} train counts" if trained else f"{_label(paths[0])} evaluated counts"


def plot_comparison(path: Path, comparison: Comparison) -> Path:
    """A box (median, quartiles) and every repeat as a point, per report, one panel per metric
    (and the minority class's F1)."""
    from synthmed import figures

    panels = [(m, m, [r["metrics"][m] for r in comparison.reports]) for m in comparison.metrics]
    if comparison.minority_class:
        panels.append(("minority_f1", f"F1 of {comparison.minority_class}",
                       [r["minority_f1"] for r in comparison.reports]))
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    labels = [r["report"] for r in comparison.reports]
    fig, axes = figures.figure(nrows=nrows, ncols=ncols, width=3.6 * ncols, height=3.2 * nrows, squeeze=False)
    for ax, (_, title, stats) in zip(axes.ravel(), panels):
        groups = {label: (stat or {}).get("values", []) for label, stat in zip(labels, stats)}
        figures.box_strip(ax, groups)
        ax.set_title(title)
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    repeats = sorted({r["repeats"] for r in comparison.reports})
    fig.suptitle(f"{comparison.reports[0]['split']} split, repeats per report: {', '.join(map(str, repeats))}")
    return figures.save(fig, path)

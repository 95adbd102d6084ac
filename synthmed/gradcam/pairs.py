"""Real against synthetic: which maps to compare, how alike two maps are, and the summary.

A *synthetic pair* is a synthetic image and a real image it was made from (each id of its
`origin` that is in the dataset). The *baseline* for a class is as many unrelated real-real
pairs of that class (different images, different subjects when subjects are known), drawn
with the seed: if synthetic images are attended to like their origins, their similarity
should be above what two unrelated real images of the same class reach.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from synthmed.data import origins_of, Row
from synthmed.seeding import derive_seed
from synthmed.stats import summarize

TOP_FRACTION = 0.2  # the "top 20 % regions" compared by top_region_iou
MEASURES = ("pearson", "iou_top20")


@dataclass(frozen=True)
class Pair:
    kind: str  # "synthetic" (real origin, synthetic image) or "baseline" (real, real)
    label: str  # class of the pair (the synthetic image's label, or both reals')
    first: Row  # the real image
    second: Row  # the synthetic image, or another real image


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two maps' pixels; NaN when either map is constant."""
    a = a.astype(np.float64).ravel()
    b = b.astype(np.float64).ravel()
    a = a - a.mean()
    b = b - b.mean()
    norm = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / norm) if norm > 0 else float("nan")


def top_region(heat: np.ndarray, fraction: float = TOP_FRACTION) -> np.ndarray:
    """Boolean mask of the `fraction` of pixels with the highest values (ties broken by
    position, so the mask has exactly that many pixels), leaving out zero-valued pixels."""
    flat = heat.ravel()
    count = int(np.ceil(fraction * flat.size))
    order = np.argsort(-flat, kind="stable")[:count]
    mask = np.zeros(flat.size, dtype=bool)
    mask[order] = True
    return (mask & (flat > 0)).reshape(heat.shape)


def top_region_iou(a: np.ndarray, b: np.ndarray, fraction: float = TOP_FRACTION) -> float:
    """Intersection over union of the two maps' top regions; NaN when both are empty."""
    ma, mb = top_region(a, fraction), top_region(b, fraction)
    union = np.logical_or(ma, mb).sum()
    return float(np.logical_and(ma, mb).sum() / union) if union else float("nan")


def synthetic_pairs(synthetic_rows: Sequence[Row], rows_by_id: dict[str, Row]) -> list[Pair]:
    """(origin, synthetic) for every origin id of each synthetic row found in the dataset."""
    pairs = []
    for row in synthetic_rows:
        for origin in origins_of(row):
            real = rows_by_id.get(origin)
            if real is not None and real["source"] == "real":
                pairs.append(Pair("synthetic", row["label"], real, row))
    return pairs


def unrelated(a: Row, b: Row) -> bool:
    if a["id"] == b["id"]:
        return False
    return not (a.get("subject") and a.get("subject") == b.get("subject"))


def baseline_pairs(real_rows: Sequence[Row], wanted: dict[str, int], *, seed: int) -> list[Pair]:
    """Per class, up to `wanted[label]` distinct unrelated real-real pairs drawn with `seed`.

    Each class draws from its own seed, so a class's baseline does not change when other
    classes are added or removed."""
    pairs: list[Pair] = []
    for label, count in wanted.items():
        pool = sorted((row for row in real_rows if row["label"] == label), key=lambda row: row["id"])
        if len(pool) < 2 or count < 1:
            continue
        rng = np.random.default_rng(derive_seed(seed, "gradcam-baseline", label))
        chosen: set[tuple[int, int]] = set()
        for _ in range(100 * count):
            if len(chosen) == count:
                break
            i, j = sorted(int(k) for k in rng.choice(len(pool), size=2, replace=False))
            if (i, j) not in chosen and unrelated(pool[i], pool[j]):
                chosen.add((i, j))
        pairs.extend(Pair("baseline", label, pool[i], pool[j]) for i, j in sorted(chosen))
    return pairs


def summarize_pairs(records: Sequence[dict], targets: Sequence[str], classes: Sequence[str]) -> dict:
    """Per class and target: pair counts, and the similarity (`pearson`, `iou_top20`) of the
    synthetic pairs and of the baseline pairs, each in the `synthmed.stats.summarize` layout
    (a NaN similarity, from a constant or empty map, is kept but not counted). `records` are
    pairs.csv rows (kind, label, target, pearson, iou_top20)."""
    summary: dict[str, dict] = {}
    for label in classes:
        per_target = {}
        for target in targets:
            mine = [r for r in records if r["label"] == label and r["target"] == target]
            synthetic = [r for r in mine if r["kind"] == "synthetic"]
            baseline = [r for r in mine if r["kind"] == "baseline"]
            if not synthetic:
                continue
            per_target[target] = {
                "pairs": len(synthetic),
                "baseline_pairs": len(baseline),
                **{measure: summarize([r[measure] for r in synthetic]) for measure in MEASURES},
                "baseline": {measure: summarize([r[measure] for r in baseline]) for measure in MEASURES},
            }
        if per_target:
            summary[label] = per_target
    return summary

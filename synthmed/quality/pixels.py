"""Distances in pixels: memorisation (nearest real image), diversity, and the one nearest-
neighbour search (`nearest`) that pixels and features share.

Distances are root-mean-square differences on the [0, 1] scale, computed on images shrunk
(area average) to at most `DISTANCE_SIDE` px per side: 0 for identical images, 1 for black
against white. Shrinking keeps the all-pairs computation cheap and does not change the
distance of an exact copy (0).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from synthmed.stats import summarize

DISTANCE_SIDE = 64
DISTANCE = f"rms pixel difference on [0, 1], images shrunk to <= {DISTANCE_SIDE} px"
DEFAULT_COPY_THRESHOLD = 0.02
MAX_DIVERSITY_IMAGES = 256  # pairwise diversity on a seeded subset beyond this many images


def flat_pixels(images: np.ndarray) -> Any:
    """uint8/uint16 (N, C, H, W) -> float64 tensor (N, D) on [0, 1], shrunk to DISTANCE_SIDE px."""
    import torch
    from torch.nn import functional as F

    from synthmed.batches import to_unit_float

    x = to_unit_float(np.ascontiguousarray(images))
    height, width = x.shape[-2:]
    if max(height, width) > DISTANCE_SIDE:
        scale = DISTANCE_SIDE / max(height, width)
        x = F.interpolate(x, size=(max(1, round(height * scale)), max(1, round(width * scale))), mode="area")
    return x.reshape(x.shape[0], -1).to(torch.float64)


def pairwise_distances(a: np.ndarray, b: np.ndarray, *, chunk: int = 512) -> np.ndarray:
    """RMS distance between every image of `a` and every image of `b`: (len(a), len(b))."""
    import torch

    fa, fb = flat_pixels(a), flat_pixels(b)
    if fa.shape[1] != fb.shape[1]:
        raise ValueError("images of different sizes cannot be compared")
    rows = [torch.cdist(part, fb) for part in fa.split(chunk)]
    return (torch.cat(rows) / fa.shape[1] ** 0.5).numpy() if rows else np.zeros((0, len(b)))


def nearest(queries: Any, references: Any, *, exclude_self: bool = False, chunk: int = 512
            ) -> tuple[np.ndarray, np.ndarray]:
    """(RMS distance, index) of each query's nearest reference; both are (N, D) tensors of
    flattened rows (`flat_pixels`, or features). `exclude_self` (the two are the same set):
    leave-one-out, and nothing below two rows."""
    import torch

    empty = (np.zeros(0), np.zeros(0, dtype=np.int64))
    if len(queries) == 0 or len(references) == 0 or (exclude_self and len(queries) < 2):
        return empty
    if queries.shape[1] != references.shape[1]:
        raise ValueError("images of different sizes cannot be compared")
    references = references.to(torch.float64)
    distances, indices = [], []
    for start in range(0, len(queries), chunk):
        d = torch.cdist(queries[start : start + chunk].to(torch.float64), references)
        if exclude_self:
            rows = torch.arange(len(d))
            d[rows, rows + start] = float("inf")
        best = d.min(dim=1)
        distances.append(best.values)
        indices.append(best.indices)
    return (torch.cat(distances) / queries.shape[1] ** 0.5).numpy(), torch.cat(indices).numpy()


def copy_measures(nearest_real: np.ndarray, copies: np.ndarray) -> dict[str, Any]:
    """The measures every quality.json holds for a group of synthetic images: how many, their
    distance to the nearest real train image, and how many count as near copies."""
    count = len(nearest_real)
    near = int(np.asarray(copies, dtype=bool).sum())
    return {"synthetic": count, "nearest_real": summarize(nearest_real), "near_copies": near,
            "near_copy_share": near / count if count else None}


def mean_pairwise_distance(images: np.ndarray, *, seed: int = 0) -> float | None:
    """Mean distance over distinct pairs (a seeded subset of MAX_DIVERSITY_IMAGES); None below 2 images."""
    if len(images) < 2:
        return None
    if len(images) > MAX_DIVERSITY_IMAGES:
        keep = np.random.default_rng(seed).choice(len(images), MAX_DIVERSITY_IMAGES, replace=False)
        images = images[np.sort(keep)]
    distances = pairwise_distances(images, images)
    n = len(images)
    return float(distances.sum() / (n * (n - 1)))

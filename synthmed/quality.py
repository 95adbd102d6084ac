"""How good are synthetic images? Label fidelity, memorisation, diversity, contact sheets.

Distances are root-mean-square pixel differences on the [0, 1] scale, computed on images
shrunk (area average) to at most `DISTANCE_SIDE` px per side: 0 for identical images,
1 for black against white. Shrinking keeps the all-pairs computation cheap and does not
change the distance of an exact copy (0).

Used by `synthmed generate` (and reusable by `interpolate`, which also makes new images
from real ones): `quality_report(...)` returns a JSON-ready dict, `contact_sheet(...)`
an image grid of synthetic samples above real ones.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

DISTANCE_SIDE = 64
DEFAULT_COPY_THRESHOLD = 0.02
MAX_DIVERSITY_IMAGES = 256  # pairwise diversity on a seeded subset beyond this many images


def _flat(images: np.ndarray) -> Any:
    """uint8/uint16 (N, C, H, W) -> float32 (N, D) on [0, 1], shrunk to DISTANCE_SIDE px."""
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

    fa, fb = _flat(a), _flat(b)
    if fa.shape[1] != fb.shape[1]:
        raise ValueError("images of different sizes cannot be compared")
    rows = [torch.cdist(part, fb) for part in fa.split(chunk)]
    return (torch.cat(rows) / fa.shape[1] ** 0.5).numpy() if rows else np.zeros((0, len(b)))


def nearest_distances(images: np.ndarray, reference: np.ndarray, *, exclude_self: bool = False) -> np.ndarray:
    """Distance from each image to its nearest reference image (leave-one-out when the two are the same set)."""
    if len(images) == 0 or len(reference) == 0:
        return np.zeros(0)
    distances = pairwise_distances(images, reference)
    if exclude_self:
        if len(images) < 2:
            return np.zeros(0)
        np.fill_diagonal(distances, np.inf)
    return distances.min(axis=1)


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


def judge_predictions(judge: Any, config: dict[str, Any], images: np.ndarray, *, device: Any, batch_size: int = 128
                      ) -> np.ndarray:
    """Class indices a trained classifier (contract 1 config) predicts for stored images."""
    import torch
    from torch.nn import functional as F

    from synthmed.batches import model_input

    judge = judge.to(device).eval()
    size = tuple(config.get("image_size") or images.shape[-2:])
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = model_input(np.ascontiguousarray(images[start : start + batch_size]), config["normalization"], device=device)
            if tuple(x.shape[-2:]) != size:
                x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            out.append(judge(x).argmax(dim=1).cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)


def _summary(values: np.ndarray) -> dict[str, float] | None:
    if len(values) == 0:
        return None
    return {"min": round(float(values.min()), 6), "median": round(float(np.median(values)), 6),
            "mean": round(float(values.mean()), 6)}


def quality_report(
    synthetic: dict[str, np.ndarray],
    real: dict[str, np.ndarray],
    *,
    classes: Sequence[str],
    judge: Any = None,
    judge_config: dict[str, Any] | None = None,
    copy_threshold: float = DEFAULT_COPY_THRESHOLD,
    device: Any = "cpu",
) -> dict[str, Any]:
    """Per class (of `synthetic`): label fidelity (judge accuracy on the synthetic images),
    memorisation (distance to the nearest real train image of any class, near copies under
    `copy_threshold`, and the same nearest distance among real images for reference),
    diversity (mean pairwise distance, synthetic and real, and their ratio)."""
    all_real = np.concatenate([r for r in real.values() if len(r)]) if any(len(r) for r in real.values()) else None
    judge_index = None
    if judge is not None:
        judge_index = {name: i for i, name in enumerate(judge_config["classes"])}
    per_class: dict[str, Any] = {}
    total = copies = correct = judged = 0
    for label, images in synthetic.items():
        real_images = real.get(label, np.zeros((0,) + images.shape[1:], dtype=images.dtype))
        nearest = nearest_distances(images, all_real) if all_real is not None else np.zeros(0)
        near_copies = int((nearest < copy_threshold).sum())
        fidelity = None
        if judge is not None and len(images):
            predicted = judge_predictions(judge, judge_config, images, device=device)
            hits = int((predicted == judge_index[label]).sum())
            fidelity = round(hits / len(images), 6)
            correct, judged = correct + hits, judged + len(images)
        diversity_synthetic = mean_pairwise_distance(images)
        diversity_real = mean_pairwise_distance(real_images)
        ratio = None
        if diversity_synthetic is not None and diversity_real:
            ratio = round(diversity_synthetic / diversity_real, 6)
        per_class[label] = {
            "synthetic": int(len(images)),
            "real_train": int(len(real_images)),
            "label_fidelity": fidelity,
            "nearest_real": _summary(nearest),
            "near_copies": near_copies,
            "real_nearest_real": _summary(nearest_distances(real_images, real_images, exclude_self=True)),
            "diversity": {
                "synthetic": None if diversity_synthetic is None else round(diversity_synthetic, 6),
                "real": None if diversity_real is None else round(diversity_real, 6),
                "ratio": ratio,
            },
        }
        total += len(images)
        copies += near_copies
    ordered = {label: per_class[label] for label in classes if label in per_class}
    return {
        "distance": f"rms pixel difference on [0, 1], images shrunk to <= {DISTANCE_SIDE} px",
        "copy_threshold": copy_threshold,
        "classes": ordered,
        "overall": {
            "synthetic": int(total),
            "near_copies": int(copies),
            "label_fidelity": round(correct / judged, 6) if judged else None,
        },
    }


def contact_sheet(synthetic: np.ndarray, real: np.ndarray, *, columns: int = 8, rows: int = 2, gap: int = 4
                  ) -> np.ndarray:
    """A grid image (H, W) or (H, W, 3), uint8: up to `rows` rows of synthetic samples, a
    white bar, then up to `rows` rows of real ones."""
    import torch
    from torchvision.utils import make_grid

    from synthmed.data.imageio import from_chw

    def block(images: np.ndarray) -> Any:
        images = images[: columns * rows]
        if images.dtype == np.uint16:
            images = (images // 257).astype(np.uint8)
        tensor = torch.from_numpy(np.ascontiguousarray(images))
        if len(tensor) == 0:
            return None
        return make_grid(tensor, nrow=columns, padding=2, pad_value=0)

    parts = [part for part in (block(synthetic), block(real)) if part is not None]
    width = max(part.shape[-1] for part in parts)
    padded = []
    for i, part in enumerate(parts):
        part = torch.nn.functional.pad(part, (0, width - part.shape[-1]))
        if i:
            padded.append(torch.full((part.shape[0], gap, width), 255, dtype=part.dtype))
        padded.append(part)
    grid = torch.cat(padded, dim=1)
    channels = synthetic.shape[1] if len(synthetic) else real.shape[1]
    return from_chw(grid[:channels].numpy())

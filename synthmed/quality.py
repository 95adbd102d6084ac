"""How good are synthetic images: memorisation, diversity, label fidelity, contact sheets, and
the one layout of `quality.json` that `generate` and `interpolate` share.

Distances are root-mean-square differences on the [0, 1] scale, computed on images shrunk
(area average) to at most `DISTANCE_SIDE` px per side: 0 for identical images, 1 for black
against white. Shrinking keeps the all-pairs computation cheap and does not change the
distance of an exact copy (0). `nearest` is the one nearest-neighbour search (pixels, or any
other flattened features such as an autoencoder's codes).

quality.json, whichever command writes it:

    {"distance": how distances are measured,
     "classes": {label: {"synthetic": n, "nearest_real": summary, "near_copies": k,
                         "near_copy_share": k / n, ...measures of that command}},
     "overall": {the same keys over every synthetic image, ...},
     ...settings of that command (copy threshold, judge, autoencoder)}

`nearest_real` is the distance from each synthetic image to its nearest real train image, a
summary in the `synthmed.stats.summarize` layout; what counts as a near copy is the command's
own criterion, named in its settings.
"""

from __future__ import annotations

from typing import Any, Sequence

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


def judge_predictions(judge: Any, config: dict[str, Any], images: np.ndarray, *, device: Any, batch_size: int = 128
                      ) -> np.ndarray:
    """Class indices a trained classifier (a `synthmed train` model folder's config) predicts for stored images."""
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
    """quality.json of `generate`. Per class (of `synthetic`) and overall: the shared copy
    measures (`copy_measures`; a near copy is closer than `copy_threshold` to a real train
    image of any class), label fidelity (judge accuracy on the synthetic images), and per
    class the nearest distance among the real images themselves for reference and diversity
    (mean pairwise distance, synthetic and real, and their ratio)."""
    all_real = np.concatenate([r for r in real.values() if len(r)]) if any(len(r) for r in real.values()) else None
    real_flat = flat_pixels(all_real) if all_real is not None else None
    judge_index = None
    if judge is not None:
        judge_index = {name: i for i, name in enumerate(judge_config["classes"])}
    per_class: dict[str, Any] = {}
    distances, correct, judged = [], 0, 0
    for label, images in synthetic.items():
        real_images = real.get(label, np.zeros((0,) + images.shape[1:], dtype=images.dtype))
        nearest_real = nearest(flat_pixels(images), real_flat)[0] if real_flat is not None and len(images) else np.zeros(0)
        distances.append(nearest_real)
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
        own = flat_pixels(real_images) if len(real_images) > 1 else None
        per_class[label] = {
            **copy_measures(nearest_real, nearest_real < copy_threshold),
            "real_train": int(len(real_images)),
            "label_fidelity": fidelity,
            "real_nearest_real": summarize(nearest(own, own, exclude_self=True)[0] if own is not None else []),
            "diversity": {
                "synthetic": None if diversity_synthetic is None else round(diversity_synthetic, 6),
                "real": None if diversity_real is None else round(diversity_real, 6),
                "ratio": ratio,
            },
        }
    everything = np.concatenate(distances) if distances else np.zeros(0)
    return {
        "distance": DISTANCE,
        "copy_threshold": copy_threshold,
        "classes": {label: per_class[label] for label in classes if label in per_class},
        "overall": {
            **copy_measures(everything, everything < copy_threshold),
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

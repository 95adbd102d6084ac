"""quality.json of `generate`: pixel and feature measures per class and overall, a verdict per
class, and the labelled contact sheets."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from synthmed.quality.pixels import (
    DEFAULT_COPY_THRESHOLD,
    DISTANCE,
    copy_measures,
    flat_pixels,
    mean_pairwise_distance,
    nearest,
)
from synthmed.stats import summarize


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


def _ratio(synthetic: float | None, real: float | None) -> float | None:
    return None if synthetic is None or not real else round(synthetic / real, 6)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def feature_measures(real: Any, synthetic: Any, *, copy_fraction: float, seed: int = 0) -> dict[str, Any]:
    """FID, KID, PRDC, feature diversity and feature memorisation of two feature sets (rows)."""
    from synthmed.quality.measures import fid_kid, memorisation, prdc
    from synthmed.quality.verdict import MIN_TRUSTED

    measures: dict[str, Any] = {"images": {"real": int(len(real)), "synthetic": int(len(synthetic))},
                                "trusted": bool(min(len(real), len(synthetic)) >= MIN_TRUSTED)}
    measures.update({key: _rounded(value) for key, value in fid_kid(real, synthetic, seed=seed).items()})
    scores = prdc(real, synthetic, seed=seed) or {}
    measures.update({key: _rounded(scores.get(key)) for key in ("precision", "recall", "density", "coverage")})
    measures["k"], measures["coverage_rows"] = scores.get("k"), scores.get("coverage_rows")
    distances = memorisation(real, synthetic)
    reference = float(np.median(distances["real"])) if len(distances["real"]) else None
    copies = distances["synthetic"] < copy_fraction * reference if reference else np.zeros(len(synthetic), dtype=bool)
    diversity = {"synthetic": _mean_distance(synthetic), "real": _mean_distance(real)}
    diversity["ratio"] = _ratio(diversity["synthetic"], diversity["real"])
    measures.update(nearest_real=summarize(distances["synthetic"]), real_nearest_real=summarize(distances["real"]),
                    near_copies=int(copies.sum()), diversity=diversity)
    measures["_copies"] = copies  # popped by the caller: combined with the pixel near copies
    return measures


def _mean_distance(features: Any) -> float | None:
    """Mean RMS distance over distinct pairs of rows (features are few and small: all pairs)."""
    import torch

    n = len(features)
    if n < 2:
        return None
    d = torch.cdist(features.double(), features.double()) / features.shape[1] ** 0.5
    return round(float(d.sum() / (n * (n - 1))), 6)


def quality_report(
    synthetic: dict[str, np.ndarray],
    real: dict[str, np.ndarray],
    *,
    classes: Sequence[str],
    judge: Any = None,
    judge_config: dict[str, Any] | None = None,
    encoder: Any = None,
    feature_space: str | None = None,
    copy_threshold: float = DEFAULT_COPY_THRESHOLD,
    device: Any = "cpu",
) -> dict[str, Any]:
    """quality.json of `generate`. Per class (of `synthetic`) and overall: the shared copy
    measures (a pixel near copy is closer than `copy_threshold` to a real train image of any
    class), label fidelity (the judge's accuracy on the synthetic images), pixel diversity
    against the real images', and with an `encoder` (synthmed.quality.features) the feature
    measures (FID, KID, precision / recall / density / coverage, feature memorisation); then
    the verdict (synthmed.quality.verdict)."""
    from synthmed.quality.features import embed
    from synthmed.quality.verdict import FEATURE_COPY_FRACTION, MIN_TRUSTED, THRESHOLDS
    from synthmed.quality.verdict import judge as give_verdict

    present = [r for r in real.values() if len(r)]
    all_real = np.concatenate(present) if present else None
    real_flat = flat_pixels(all_real) if all_real is not None else None
    real_features = {label: embed(encoder, images, device=device) for label, images in real.items()} if encoder else {}
    judge_index = {name: i for i, name in enumerate(judge_config["classes"])} if judge is not None else {}
    per_class: dict[str, Any] = {}
    pooled: dict[str, list] = {"nearest": [], "copies": [], "features": []}
    correct = judged = 0
    for label, images in synthetic.items():
        real_images = real.get(label, np.zeros((0,) + images.shape[1:], dtype=images.dtype))
        nearest_real = nearest(flat_pixels(images), real_flat)[0] if real_flat is not None and len(images) else np.zeros(0)
        copies = nearest_real < copy_threshold
        fidelity = None
        if judge is not None and len(images):
            hits = int((judge_predictions(judge, judge_config, images, device=device) == judge_index[label]).sum())
            fidelity = round(hits / len(images), 6)
            correct, judged = correct + hits, judged + len(images)
        diversity = {"synthetic": _rounded(mean_pairwise_distance(images)),
                     "real": _rounded(mean_pairwise_distance(real_images))}
        diversity["ratio"] = _ratio(diversity["synthetic"], diversity["real"])
        own = flat_pixels(real_images) if len(real_images) > 1 else None
        stats = {**copy_measures(nearest_real, copies), "real_train": int(len(real_images)), "label_fidelity": fidelity,
                 "real_nearest_real": summarize(nearest(own, own, exclude_self=True)[0] if own is not None else []),
                 "diversity": diversity, "features": None}
        if encoder is not None:
            features = embed(encoder, images, device=device)
            stats["features"] = feature_measures(real_features[label], features, copy_fraction=FEATURE_COPY_FRACTION)
            feature_copies = stats["features"].pop("_copies")
            pooled["features"].append(features)
        else:
            feature_copies = np.zeros(len(images), dtype=bool)
        either = copies | feature_copies
        stats["copies"] = {"pixel": int(copies.sum()), "feature": int(feature_copies.sum()), "either": int(either.sum()),
                           "share": round(float(either.mean()), 6) if len(either) else None}
        stats["verdict"], stats["problems"] = give_verdict(stats)
        per_class[label] = stats
        pooled["nearest"].append(nearest_real)
        pooled["copies"].append(either)
    everything = np.concatenate(pooled["nearest"]) if pooled["nearest"] else np.zeros(0)
    either = np.concatenate(pooled["copies"]) if pooled["copies"] else np.zeros(0, dtype=bool)
    overall: dict[str, Any] = {**copy_measures(everything, everything < copy_threshold),
                               "label_fidelity": round(correct / judged, 6) if judged else None, "features": None,
                               "copies": {"either": int(either.sum()),
                                          "share": round(float(either.mean()), 6) if len(either) else None}}
    if encoder is not None and pooled["features"]:
        import torch

        references = [real_features[label] for label in classes if label in synthetic and label in real_features]
        overall["features"] = feature_measures(torch.cat(references), torch.cat(pooled["features"]),
                                               copy_fraction=FEATURE_COPY_FRACTION)
        overall["features"].pop("_copies")
    ordered = {label: per_class[label] for label in classes if label in per_class}
    warnings = [f"class {label!r}: the feature measures rest on {s['features']['images']['real']} real and "
                f"{s['features']['images']['synthetic']} synthetic image(s), too few to trust (fewer than {MIN_TRUSTED})"
                for label, s in ordered.items() if s["features"] and not s["features"]["trusted"]]
    return {
        "distance": DISTANCE,
        "copy_threshold": copy_threshold,
        "features": {"space": feature_space, "num_features": getattr(encoder, "num_features", None)} if encoder else None,
        "thresholds": THRESHOLDS,
        "classes": ordered,
        "overall": overall,
        "not_ok": {label: s["verdict"] for label, s in ordered.items() if s["verdict"] != "ok"},
        "warnings": warnings,
    }


def contact_sheet(synthetic: np.ndarray, real: np.ndarray, *, label: str = "", verdict: str | None = None,
                  columns: int = 8, rows: int = 2) -> Any:
    """A labelled figure (synthmed.figures.image_grid): up to `rows` rows of synthetic samples
    above up to `rows` rows of real train images, upscaled so small images stay readable."""
    from synthmed.figures import image_grid

    grid, names = [], []
    for name, images in (("synthetic", synthetic), ("real", real)):
        images = images[: columns * rows]
        for start in range(0, len(images), columns):
            grid.append(list(images[start : start + columns]))
            names.append(name if start == 0 else "")
    title = label + (f": {verdict}" if verdict else "")
    return image_grid(grid, row_labels=names, title=title)

"""The rate-distortion report of `compress`: quality of decoded images (PSNR, SSIM, MS-SSIM via
torchmetrics), its summary per codec and quality, and the rate-distortion plot."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003, five scales
SSIM_KERNEL = 11
QUALITY_CHUNK = 8
MEASURES = ("bpp", "psnr", "ssim", "ms_ssim", "mse", "encode_s", "decode_s")  # per image, summarised per set


def ms_ssim_scales(height: int, width: int) -> int:
    """How many MS-SSIM scales fit an image (torchmetrics needs side // (s-1)^2 > kernel - 1
    and side >= 2^s); 0 when even two scales do not fit."""
    side = min(height, width)
    for scales in range(len(MS_SSIM_BETAS), 1, -1):
        if side >= 2**scales and side // max(1, scales - 1) ** 2 > SSIM_KERNEL - 1:
            return scales
    return 0


def ms_ssim_betas(height: int, width: int) -> tuple[float, ...] | None:
    """The first `ms_ssim_scales` of the five standard weights, renormalised to sum to 1 (None
    when even two scales do not fit). The report and the ms-ssim distortion of the learned
    codecs (synthmed.compress.models.distortion) both use these."""
    scales = ms_ssim_scales(height, width)
    if not scales:
        return None
    return tuple((np.array(MS_SSIM_BETAS[:scales]) / sum(MS_SSIM_BETAS[:scales])).tolist())


def image_quality(originals: Sequence[np.ndarray], decoded: Sequence[np.ndarray], *, bit_depth: int) -> list[dict[str, Any]]:
    """Per image: mse, psnr (None when decoded exactly), ssim, ms_ssim (None when too small)."""
    import torch
    from torchmetrics.functional.image import (
        multiscale_structural_similarity_index_measure,
        structural_similarity_index_measure,
    )

    from synthmed.data.imageio import to_chw

    peak = 65535.0 if bit_depth > 8 else 255.0
    results: list[dict[str, Any]] = [{} for _ in originals]
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(originals):
        by_shape.setdefault(image.shape, []).append(i)
    # A few images at a time: torchmetrics' MS-SSIM holds tens of MB of float64 per image
    # (a whole report split at 224 px needed over 10 GB at once).
    chunks = [(shape, indices[k : k + QUALITY_CHUNK]) for shape, indices in by_shape.items()
              for k in range(0, len(indices), QUALITY_CHUNK)]
    for shape, indices in chunks:
        target = torch.from_numpy(np.stack([to_chw(originals[i]) for i in indices]).astype(np.float64))
        preds = torch.from_numpy(np.stack([to_chw(decoded[i]) for i in indices]).astype(np.float64))
        mse = ((preds - target) ** 2).flatten(1).mean(1)
        ssim = structural_similarity_index_measure(preds, target, data_range=peak, reduction="none")
        scales = ms_ssim_scales(*target.shape[-2:])
        betas = ms_ssim_betas(*target.shape[-2:])
        ms_ssim = None
        if betas:
            ms_ssim = multiscale_structural_similarity_index_measure(
                preds, target, data_range=peak, betas=betas, reduction="none", normalize="relu"
            )
        for k, i in enumerate(indices):
            error = float(mse[k])
            results[i] = {
                "mse": error,
                "psnr": None if error == 0 else 10 * math.log10(peak**2 / error),
                "ssim": float(ssim[k]),
                "ms_ssim": None if ms_ssim is None else float(ms_ssim[k]),
                "ms_ssim_scales": scales,
            }
    return results


def summarise_set(per_image: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One codec and quality over its images: each measure in the `synthmed.stats.summarize`
    layout with its mean (rate-distortion results are compared as means); PSNR counts only the
    images not decoded exactly (`exact_images` counts those)."""
    from synthmed.stats import summarize

    return {
        **{key: summarize([r.get(key) for r in per_image], mean=True) for key in MEASURES},
        "ms_ssim_scales": min((r["ms_ssim_scales"] for r in per_image), default=0),
        "exact_images": sum(1 for r in per_image if r["mse"] == 0),
    }


def plot_rate_distortion(results: Sequence[dict[str, Any]], path: Path, *, title: str = "") -> None:
    """PSNR against bpp, one curve per codec; a lossless codec is a vertical line at its bpp."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    codecs = list(dict.fromkeys(r["codec"] for r in results))
    for name in codecs:
        points = sorted((r["bpp"]["mean"], r["psnr"]["mean"]) for r in results
                        if r["codec"] == name and r["bpp"]["mean"] is not None)
        if points and all(p is None for _, p in points):
            ax.axvline(points[0][0], linestyle="--", color="gray", label=f"{name} (lossless)")
            continue
        points = [(b, p) for b, p in points if p is not None]
        if points:
            ax.plot([b for b, _ in points], [p for _, p in points], marker="o", label=name)
    ax.set_xlabel("bits per pixel (real file sizes)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(title or "rate-distortion")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

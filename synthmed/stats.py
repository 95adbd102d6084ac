"""The one summary of repeated measurements every report uses (evaluation metrics over
repeats, quality measures over images, rate and distortion over images, Grad-CAM similarity
over pairs): median, quartiles, count, values."""

from __future__ import annotations

from typing import Any, Iterable


def summarize(values: Iterable[float | None], *, mean: bool = False) -> dict[str, Any]:
    """{"median", "q1", "q3", "n", "values"} over the defined values (None and NaN entries are
    kept in `values`, as None, but not counted); medians and quartiles are None when nothing
    is defined.

    `mean=True` adds "mean" (None when nothing is defined), for the one consumer that
    averages: rate-distortion results, where bits per pixel and PSNR are compared as means
    over the images, as codec literature does."""
    import numpy as np

    values = [None if v is None or v != v else float(v) for v in values]  # NaN is undefined: None keeps JSON valid
    defined = [v for v in values if v is not None]
    summary: dict[str, Any] = {"median": None, "q1": None, "q3": None, "n": len(defined), "values": values}
    if defined:
        q1, median, q3 = np.percentile(defined, [25, 50, 75])
        summary.update(median=float(median), q1=float(q1), q3=float(q3))
    if mean:
        summary["mean"] = float(np.mean(defined)) if defined else None
    return summary

"""How good are synthetic images: memorisation, diversity, label fidelity, distances between
distributions in a feature space, a verdict per class, contact sheets, and the one layout of
`quality.json` that `generate` and `interpolate` share.

- `pixels`: RMS pixel distances, diversity, and `nearest`, the one nearest-neighbour search
  (pixels, or any other flattened features such as an autoencoder's codes);
- `features`: the feature spaces (a judge's penultimate layer, or a small domain encoder
  fitted on the real train split and cached per dataset);
- `measures`: FID and KID (torchmetrics), precision / recall / density / coverage;
- `verdict`: ok, collapsed, copies, off-distribution or unmeasured, and the thresholds;
- `report`: quality.json of `generate` and its contact sheets.

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

from synthmed.quality.pixels import (
    DEFAULT_COPY_THRESHOLD,
    DISTANCE,
    DISTANCE_SIDE,
    copy_measures,
    flat_pixels,
    mean_pairwise_distance,
    nearest,
    pairwise_distances,
)
from synthmed.quality.report import contact_sheet, judge_predictions, quality_report

__all__ = ["DEFAULT_COPY_THRESHOLD", "DISTANCE", "DISTANCE_SIDE", "contact_sheet", "copy_measures", "flat_pixels",
           "judge_predictions", "mean_pairwise_distance", "nearest", "pairwise_distances", "quality_report"]

"""A verdict per class, from the measures of `synthmed.quality.report`.

In the order they are checked (the first that applies is the verdict; every one that applies
is listed in `problems`):

- `collapsed`: the synthetic images vary far less than the real ones: feature diversity
  (mean pairwise feature distance) under `MIN_DIVERSITY` of the real images', pixel diversity
  under `MIN_DIVERSITY` of theirs, or recall under `MIN_RECALL`;
- `copies`: more than `MAX_COPY_SHARE` of the synthetic images are near copies of a real
  train image, in pixels (closer than the copy threshold) or in features (closer than
  `FEATURE_COPY_FRACTION` of the median distance between a real image and its nearest other
  real image, which a one-pixel shift does not undo);
- `off-distribution`: precision under `MIN_PRECISION` or density under `MIN_DENSITY`: many
  synthetic images lie outside the real images' neighbourhoods;
- `unmeasured`: none of these could be computed (too few images: a class of one synthetic
  image has no diversity, no neighbourhoods), or only diversity and copies could be judged
  (see below) and they are fine; nothing says such images are good;
- `ok` otherwise.

Estimates resting on fewer than `MIN_TRUSTED` images of either set are marked untrusted and
warned about. Such a class is judged on diversity and copies only (so it is `collapsed`,
`copies` or `unmeasured`, never `ok`): its recall, precision and density are reported but not judged, because k-nearest-neighbour balls drawn around a handful
of real images (at the sample data's scale 0.2, the 4 train slices of one subject) contain no
held-out real image either: real val images posing as synthetic ones scored recall and
precision 0.00 there, while in classes of 97 to 361 real images they scored recall 0.71-1.00,
precision 0.86-1.00 and density 0.68-1.04, far above the limits below (see
tests/test_quality_calibration.py, which checks that held-out real images are `ok`).
"""

from __future__ import annotations

from typing import Any

MIN_DIVERSITY = 0.5
MIN_RECALL = 0.25
MAX_COPY_SHARE = 0.05
FEATURE_COPY_FRACTION = 0.25
MIN_PRECISION = 0.5
MIN_DENSITY = 0.4
MIN_TRUSTED = 20
VERDICTS = ("ok", "collapsed", "copies", "off-distribution", "unmeasured")

THRESHOLDS = {"min_diversity_ratio": MIN_DIVERSITY, "min_recall": MIN_RECALL, "max_copy_share": MAX_COPY_SHARE,
              "feature_copy_fraction": FEATURE_COPY_FRACTION, "min_precision": MIN_PRECISION,
              "min_density": MIN_DENSITY, "min_trusted_images": MIN_TRUSTED}


def _below(value: float | None, limit: float) -> bool:
    return value is not None and value < limit


def judge(stats: dict[str, Any]) -> tuple[str, list[str]]:
    """(verdict, problems) for one class's (or the overall) entry of quality.json."""
    features = stats.get("features") or {}
    problems: list[tuple[str, str]] = []
    feature_ratio = (features.get("diversity") or {}).get("ratio")
    pixel_ratio = (stats.get("diversity") or {}).get("ratio")
    if _below(feature_ratio, MIN_DIVERSITY):
        problems.append(("collapsed", f"feature diversity {feature_ratio:.2f} of the real images'"))
    if _below(pixel_ratio, MIN_DIVERSITY):
        problems.append(("collapsed", f"pixel diversity {pixel_ratio:.2f} of the real images'"))
    # Neighbourhoods of too few real images hold no unseen real image either (see above).
    neighbourhoods = features.get("trusted", True)
    if neighbourhoods and _below(features.get("recall"), MIN_RECALL):
        problems.append(("collapsed", f"recall {features['recall']:.2f}"))
    share = (stats.get("copies") or {}).get("share")
    if share is not None and share > MAX_COPY_SHARE:
        problems.append(("copies", f"{share:.0%} near copies of real train images"))
    if neighbourhoods and _below(features.get("precision"), MIN_PRECISION):
        problems.append(("off-distribution", f"precision {features['precision']:.2f}"))
    if neighbourhoods and _below(features.get("density"), MIN_DENSITY):
        problems.append(("off-distribution", f"density {features['density']:.2f}"))
    # Not being a copy says nothing of quality: without any of these the images are not judged.
    measured = (feature_ratio, pixel_ratio, *(features.get(key) for key in ("recall", "precision", "density")))
    if not problems and all(value is None for value in measured):
        return "unmeasured", ["too few images to measure"]
    # Diverse images that are not copies can still be noise: with no trusted neighbourhoods
    # nothing says they look like the class, so they are not called ok.
    if not problems and not neighbourhoods:
        return "unmeasured", [f"too few images (under {MIN_TRUSTED}) to judge recall, precision and density; "
                              "diversity and copies are fine"]
    if not problems:
        return "ok", []
    first = min(VERDICTS.index(kind) for kind, _ in problems)
    return VERDICTS[first], [reason for _, reason in problems]

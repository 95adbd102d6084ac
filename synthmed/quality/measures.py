"""Distribution measures in a feature space: FID and KID (torchmetrics, with our encoder in
place of Inception), precision / recall / density / coverage, and memorisation.

Precision, recall, density and coverage follow Naeem et al. (2020), "Reliable fidelity and
diversity metrics for generative models". Written here because no maintained package
provides them (the `prdc` package is a single 2020 release, numpy only); it is a few lines
of `torch.cdist` and `kthvalue`:

- each real feature gets a radius, the distance to its k-th nearest other real feature;
- precision: share of synthetic features inside some real ball;
- recall: share of real features inside some synthetic ball (radii among the synthetic ones);
- density: real balls containing each synthetic feature, over k, averaged (about 1 when the
  two sets come from one distribution, above 1 when synthetic images crowd the real modes);
- coverage: share of real features whose ball contains a synthetic one, on sets of equal size
  as the paper defines it: the larger set is subsampled (seeded) to the smaller one's size.
  Otherwise coverage falls with the synthetic count alone (150 synthetic points against 600
  real ones from one distribution cover 0.68 of them; 150 against 150 cover 0.97).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

PRDC_K = 5


def _radii(features: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each row to its k-th nearest other row."""
    d = torch.cdist(features, features)
    return d.kthvalue(k + 1, dim=1).values  # +1: the row itself is at distance 0


def prdc(real: torch.Tensor, synthetic: torch.Tensor, *, k: int = PRDC_K, seed: int = 0) -> dict[str, float] | None:
    """Precision, recall, density and coverage of `synthetic` against `real` (rows are
    features), with k reduced to fit small sets; None below 2 rows in either set.
    `coverage_rows`: the size of the equal-size sets coverage was computed on."""
    k = min(k, len(real) - 1, len(synthetic) - 1)
    if k < 1:
        return None
    real, synthetic = real.double(), synthetic.double()
    real_radii = _radii(real, k)
    synthetic_radii = _radii(synthetic, k)
    cross = torch.cdist(real, synthetic)  # (real, synthetic)
    inside_real = cross <= real_radii[:, None]
    return {
        "precision": float(inside_real.any(dim=0).double().mean()),
        "recall": float((cross <= synthetic_radii[None, :]).any(dim=1).double().mean()),
        "density": float(inside_real.double().sum(dim=0).mean() / k),
        **_equal_size_coverage(real, synthetic, k=k, seed=seed),
        "k": k,
    }


def _equal_size_coverage(real: torch.Tensor, synthetic: torch.Tensor, *, k: int, seed: int) -> dict[str, float]:
    rows = min(len(real), len(synthetic))
    generator = torch.Generator().manual_seed(seed)
    if len(real) > rows:
        real = real[torch.randperm(len(real), generator=generator)[:rows]]
    if len(synthetic) > rows:
        synthetic = synthetic[torch.randperm(len(synthetic), generator=generator)[:rows]]
    radii = _radii(real, k)  # the balls of the subsample: radii grow as a set thins out
    covered = torch.cdist(real, synthetic).min(dim=1).values <= radii
    return {"coverage": float(covered.double().mean()), "coverage_rows": rows}


class _Precomputed(torch.nn.Module):
    """Features are computed once per image set (they also serve PRDC and memorisation), so
    torchmetrics gets them through this pass-through; `num_features` spares it a probe."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def fid_kid(real: torch.Tensor, synthetic: torch.Tensor, *, seed: int = 0, subsets: int = 50,
            subset_size: int = 100) -> dict[str, float | None]:
    """FID and KID (mean and std over `subsets` subsets of up to `subset_size` rows) between
    two feature sets; None where a set has fewer than 2 rows."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    if len(real) < 2 or len(synthetic) < 2:
        return {"fid": None, "kid": None, "kid_std": None}
    dims = int(real.shape[1])
    fid = FrechetInceptionDistance(feature=_Precomputed(dims))
    fid.update(real.double(), real=True)
    fid.update(synthetic.double(), real=False)
    size = min(subset_size, len(real), len(synthetic))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "KID saves all features in a buffer": these sets are small
        kid = KernelInceptionDistance(feature=_Precomputed(dims), subsets=subsets, subset_size=size)
    kid.update(real.double(), real=True)
    kid.update(synthetic.double(), real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # KID draws its subsets from the global generator
        kid_mean, kid_std = kid.compute()
    return {"fid": max(0.0, float(fid.compute())), "kid": float(kid_mean), "kid_std": float(kid_std)}


def memorisation(real: torch.Tensor, synthetic: torch.Tensor) -> dict[str, Any]:
    """Nearest-real distances in feature space, for the synthetic rows and (leave-one-out) for
    the real rows themselves: (synthetic -> nearest real, real -> nearest other real)."""
    from synthmed.quality.pixels import nearest

    return {"synthetic": nearest(synthetic, real)[0] if len(real) else np.zeros(0),
            "real": nearest(real, real, exclude_self=True)[0]}

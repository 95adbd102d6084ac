"""Mean-scale hyperprior with the checkerboard context model (He et al. 2021, "Checkerboard
Context Model for Efficient Learned Image Compression", CVPR 2021).

The latent positions split into anchors ((h + w) even) and non-anchors. Anchors get their
Gaussian (mean, scale) from the hyperprior alone; non-anchors from the hyperprior and a
context: a 5x5 convolution over the quantised anchors (its input is zero at non-anchors, its
output is zeroed at anchors, so an anchor never sees context). The decoder therefore works in
two passes: decode every anchor, compute the context from them, decode every non-anchor.

Entropy parameters: 1x1 convolutions on concat(hyper-synthesis output, context output) give a
correction that is added to the hyper-synthesis output (means, raw scales). The last layer
starts at zero, so a fit starts from exactly the mean-scale hyperprior and learns what the
context adds; the paper's non-residual form gave nothing of its own at CPU budgets to rely on.

Training (`forward`): the context sees what the synthesis sees, the latents rounded around
their means with a straight-through gradient (uniform noise in the first noisy steps, as
models._quantised), so training and decoding agree on what the context gets; the rate sees
y plus uniform noise under the two-pass parameters, like the hyperprior's.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from synthmed.compress.models import (
    LATENT_RANGE,
    SCALE_LEVELS,
    SCALE_MAX,
    SCALE_MIN,
    MeanScaleHyperpriorCodec,
    _quantised,
    gaussian_likelihood,
    scale_table,
)


def anchor_mask(height: int, width: int) -> torch.Tensor:
    """(1, 1, H, W) bool: True at the anchors ((h + w) even)."""
    rows = torch.arange(height).view(-1, 1)
    cols = torch.arange(width).view(1, -1)
    return ((rows + cols) % 2 == 0).view(1, 1, height, width)


class CheckerboardHyperpriorCodec(MeanScaleHyperpriorCodec):
    """The mean-scale hyperprior plus a checkerboard context for the non-anchor half of y."""

    def __init__(self, in_channels: int = 1, hidden: int = 48, latent: int = 64, hyper: int = 32) -> None:
        super().__init__(in_channels, hidden, latent, hyper)
        self.context = nn.Conv2d(latent, 2 * latent, 5, padding=2)
        self.entropy_parameters = nn.Sequential(
            nn.Conv2d(4 * latent, 3 * latent, 1), nn.LeakyReLU(),
            nn.Conv2d(3 * latent, 3 * latent, 1), nn.LeakyReLU(),
            nn.Conv2d(3 * latent, 2 * latent, 1),
        )
        nn.init.zeros_(self.entropy_parameters[-1].weight)
        nn.init.zeros_(self.entropy_parameters[-1].bias)

    def gaussian_parameters(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise TypeError("the checkerboard codec's parameters need the anchors: use quantised_parameters")

    def mean_scale(self, features: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw = features + self.entropy_parameters(torch.cat([features, context], dim=1))
        means, scales = raw.chunk(2, dim=1)
        return means, F.softplus(scales)

    def context_of(self, y_hat: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """The context output: the 5x5 convolution of the anchors of y_hat only, zero at anchors."""
        context = self.context(torch.where(anchors, y_hat, torch.zeros_like(y_hat)))
        return torch.where(anchors, torch.zeros_like(context), context)

    def quantised_parameters(
        self, z_hat: torch.Tensor, quantise: Callable[[torch.Tensor], torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(means, scales, y_hat) of every element of y. `quantise(means)` gives y quantised
        around those means; the anchors' values come from the first (context-free) pass, and
        the context of the second pass is computed from exactly those values."""
        features = self.hyper_synthesis(z_hat)
        anchors = anchor_mask(*features.shape[-2:]).to(features.device)
        means_a, scales_a = self.mean_scale(features, torch.zeros_like(features))
        y_anchor = quantise(means_a)
        means_n, scales_n = self.mean_scale(features, self.context_of(y_anchor, anchors))
        y_hat = torch.where(anchors, y_anchor, quantise(means_n))
        return torch.where(anchors, means_a, means_n), torch.where(anchors, scales_a, scales_n), y_hat

    def forward(self, x: torch.Tensor, *, noisy_synthesis: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
        y = self.encode_latent(x)
        z = self.hyper_analysis(y)
        z_noisy = z + torch.empty_like(z).uniform_(-0.5, 0.5)
        means, scales, y_hat = self.quantised_parameters(z_noisy, lambda m: _quantised(y, m, noisy_synthesis))
        y_noisy = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        likelihoods = [gaussian_likelihood(y_noisy - means, scales), self.hyper_density.likelihood(z_noisy)]
        return self.decode_latent(y_hat), likelihoods

    # ---- coding: the anchors' parameters from z_hat alone, the non-anchors' from the decoded anchors

    @staticmethod
    def _indices(scales: torch.Tensor) -> torch.Tensor:
        scales = scales.double().clamp(SCALE_MIN, SCALE_MAX)
        return torch.bucketize(scales, scale_table().to(scales.device)).clamp_max(SCALE_LEVELS - 1)

    def coding_parameters(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise TypeError("the checkerboard codec codes in two passes: use anchor_coding / nonanchor_coding")

    @torch.no_grad()
    def anchor_coding(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(hyper features, means, scale indices) of the first pass; valid at the anchors."""
        features = self.hyper_synthesis(z_hat)
        means, scales = self.mean_scale(features, torch.zeros_like(features))
        return features, means, self._indices(scales)

    @torch.no_grad()
    def nonanchor_coding(self, features: torch.Tensor, anchor_symbols: torch.Tensor,
                         anchor_means: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(means, scale indices) of the second pass from the coded anchor symbols (valid at the
        non-anchors). Encoder and decoder both call it with the integer symbols and the
        first-pass means, so both see the very same numbers."""
        anchors = anchor_mask(*features.shape[-2:])
        y_anchor = anchor_symbols + anchor_means
        means, scales = self.mean_scale(features, self.context_of(y_anchor, anchors))
        return means, self._indices(scales)


def rounded_symbols(y: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    return torch.round(y - means).clamp(-LATENT_RANGE, LATENT_RANGE)

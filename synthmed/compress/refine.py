"""Encoder-side latent refinement: per image, optimise the latents against the fixed decoder.

The analysis transform is amortised: it gives good latents on average, not the best ones for
each image. Refinement (Campos et al. 2019, "Content adaptive optimization for neural image
compression"; Yang et al. 2020, "Improving inference for neural image compression") starts
from the analysis' y (and hyperlatent z = h_a(y)) and runs Adam on y and z themselves to lower
the rate-distortion cost of the stream they code to, rate + lambda * 255^2 * MSE (or rate +
lambda * (1 - MS-SSIM) for a model fitted for MS-SSIM: the distortion it was fitted for), with the
synthesis, the hyper-synthesis and the entropy model unchanged. The decoder and the stream
format do not change: only which symbols the encoder writes.

The cost descended is that of a stochastic soft rounding, annealed towards hard rounding
(stochastic Gumbel annealing, Yang et al. 2020); plain straight-through rounding barely moved
the cost here. After every step the hard-rounded cost (what the coder writes, up to the scale
table's quantisation) is measured and the best iterate is kept, so refinement never returns
worse latents than the analysis gave. The Gumbel noise comes from a fixed-seed generator and
it runs on the CPU, so encoding stays deterministic.
"""

from __future__ import annotations

import math

import torch

from synthmed.compress.models import (
    HYPER_RANGE,
    LATENT_RANGE,
    MeanScaleHyperpriorCodec,
    distortion,
    gaussian_likelihood,
)

# Measured on the 128 px sample, quality 7, 30 steps: lr 0.05 lowered the coded cost 2.4 %
# (0.02: 2.0 %, 0.1: 1.9 %); plain straight-through rounding (no annealing) only 0.2 %.
DEFAULT_LEARNING_RATE = 0.05  # latents are in quantisation steps
TAU_START, TAU_END = 0.5, 0.05  # the soft rounding's temperature, annealed geometrically


def _rounded(values: torch.Tensor, offset: torch.Tensor | float, half_range: int) -> torch.Tensor:
    """round(values - offset) clamped to the coder's range, + offset, with a straight-through gradient."""
    symbols = torch.round(values - offset).clamp(-half_range, half_range) + offset
    return values + (symbols - values).detach()


def _soft_rounded(values: torch.Tensor, offset, half_range: int, tau: float, generator) -> torch.Tensor:
    """Stochastic Gumbel annealing (Yang et al. 2020): a Gumbel-softmax draw between floor and
    ceil of values - offset, the nearer one likelier; as tau falls it becomes rounding."""
    shifted = values - offset
    low = torch.floor(shifted).detach()
    frac = shifted - low
    eps = 1e-5
    logits = torch.stack([-torch.atanh(frac.clamp(eps, 1 - eps)), -torch.atanh((1 - frac).clamp(eps, 1 - eps))]) / tau
    uniform = torch.rand(logits.shape, generator=generator).clamp(1e-10, 1 - 1e-10)
    weights = torch.softmax(logits - torch.log(-torch.log(uniform)), dim=0)
    return (low + weights[1]).clamp(-half_range, half_range) + offset


def _cost(model, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor | None, lmbda: float,
          tau: float | None = None, generator=None, kind: str = "mse") -> torch.Tensor:
    """The coded rate (bits per pixel) + lambda * distortion (`kind`: 255^2 * MSE or 1 - MS-SSIM)
    of latents y (and hyperlatents z); with a temperature tau, of a soft rounding of them (the
    cost refinement descends)."""
    pixels = x.shape[0] * x.shape[2] * x.shape[3]

    def rounded(values, offset, half_range):
        if tau is None:
            return _rounded(values, offset, half_range)
        return _soft_rounded(values, offset, half_range, tau, generator)

    if z is None:
        y_hat = rounded(y, 0.0, LATENT_RANGE)
        bits = -torch.log2(model.latent_density.likelihood(y_hat)).sum()
    else:
        z_hat = rounded(z, 0.0, HYPER_RANGE)
        # the coded rate of each model: the checkerboard's anchors first, then the rest
        means, scales, y_hat = model.quantised_parameters(z_hat, lambda m: rounded(y, m, LATENT_RANGE))
        bits = -torch.log2(gaussian_likelihood(y_hat - means, scales)).sum()
        bits = bits - torch.log2(model.hyper_density.likelihood(z_hat)).sum()
    x_hat = model.decode_latent(y_hat)[..., : x.shape[-2], : x.shape[-1]]
    if kind != "mse":
        return bits / pixels + lmbda * distortion(x_hat, x, kind)
    return bits / pixels + lmbda * 255.0**2 * torch.mean((x_hat - x) ** 2)


def refine_latents(model, x: torch.Tensor, *, lmbda: float, steps: int, learning_rate: float | None = None,
                   kind: str = "mse") -> tuple[torch.Tensor, torch.Tensor | None, dict]:
    """(y, z or None, record) for a padded image x (1, C, H, W) in [0, 1]: the analysis' latents
    after `steps` Adam steps on the coded cost (the best iterate), with the distortion `kind`
    the model was fitted for (and its lambda). The record holds the cost before and after."""
    hyper = isinstance(model, MeanScaleHyperpriorCodec)
    with torch.no_grad():
        y0 = model.encode_latent(x)
        z0 = model.hyper_analysis(y0) if hyper else None
    params = [y0.clone().requires_grad_(True)] + ([z0.clone().requires_grad_(True)] if hyper else [])
    # Only the latents move: the model's own parameters keep their values and get no gradient.
    frozen = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        optimizer = torch.optim.Adam(params, lr=learning_rate or DEFAULT_LEARNING_RATE)
        # Cosine decay: large moves first, then settle on one side of the rounding boundaries.
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / max(1, steps))))
        generator = torch.Generator().manual_seed(0)
        # steps + 1 iterates: the analysis' latents, then each step's; the best by hard-rounded cost is kept.
        best, best_cost, start = params, math.inf, math.inf
        for step in range(steps + 1):
            with torch.no_grad():
                value = float(_cost(model, x, params[0], params[1] if hyper else None, lmbda, kind=kind))
            if step == 0:
                start = value
            if value < best_cost:
                best, best_cost = [p.detach().clone() for p in params], value
            if step == steps:
                break
            tau = TAU_START * (TAU_END / TAU_START) ** (step / max(1, steps - 1))
            cost = _cost(model, x, params[0], params[1] if hyper else None, lmbda, tau, generator, kind)
            optimizer.zero_grad(set_to_none=True)
            cost.backward()
            optimizer.step()
            schedule.step()
    finally:
        for p, flag in zip(model.parameters(), frozen):
            p.requires_grad_(flag)
    return best[0], best[1] if hyper else None, {"cost_before": start, "cost_after": best_cost, "steps": steps, "distortion": kind}

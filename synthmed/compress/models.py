"""Learned image codecs: factorized prior (Ballé et al. 2016/2018) and mean-scale hyperprior (Minnen et al. 2018).

Small on purpose (three stride-2 stages for the latent, two more for the hyperlatent) so a
model fits on the CPU in minutes at 128 px. Training: `forward(x)` returns the reconstruction
from the rounded latents (straight-through gradient) and the likelihoods of noisy latents
(uniform noise stands in for rounding), so `rate_distortion_loss` is differentiable. Coding: the entropy coder in
synthmed.compress.learned rounds the latents and uses the integer probability tables that
`build_tables()` stores as buffers (saved with the weights), so encoder and decoder use
exactly the same tables.

GDN and the non-parametric factorized density are written here by hand: no installed library
provides them (CompressAI has both but requires numpy < 2, which this environment cannot take;
see docs/decisions.md).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LATENT_RANGE = 127  # latent symbols are clamped to [-127, 127]
HYPER_RANGE = 63  # hyperlatent symbols to [-63, 63]
TABLE_TOTAL = 1 << 16  # integer probability tables sum to this (every symbol >= 1)
SCALE_MIN, SCALE_MAX, SCALE_LEVELS = 0.11, 64.0, 64
LIKELIHOOD_FLOOR = 1e-9


def _inverse_softplus(value: float) -> float:
    return math.log(math.expm1(value))


class _LowerBound(torch.autograd.Function):
    """max(x, bound) whose gradient still flows where it would lift x above the bound.

    A plain clamp has zero gradient below the bound, so a scale or likelihood that falls
    under it can never come back (the hyperprior then stops learning)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, bound: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.bound = bound
        return x.clamp_min(bound)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        passes = (x >= ctx.bound) | (grad < 0)
        return grad * passes.to(grad.dtype), None


def lower_bound(x: torch.Tensor, bound: float) -> torch.Tensor:
    return _LowerBound.apply(x, bound)


class GDN(nn.Module):
    """Generalized divisive normalization: y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2) (inverse: times).

    beta and gamma are kept positive through softplus."""

    def __init__(self, channels: int, *, inverse: bool = False) -> None:
        super().__init__()
        self.inverse = inverse
        self.beta_raw = nn.Parameter(torch.full((channels,), _inverse_softplus(1.0)))
        gamma = torch.full((channels, channels), _inverse_softplus(1e-4))
        gamma.fill_diagonal_(_inverse_softplus(0.1))
        self.gamma_raw = nn.Parameter(gamma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        beta = F.softplus(self.beta_raw) + 1e-6
        gamma = F.softplus(self.gamma_raw).view(channels, channels, 1, 1)
        norm = torch.sqrt(F.conv2d(x * x, gamma, beta))
        return x * norm if self.inverse else x / norm


class FactorizedDensity(nn.Module):
    """Per-channel non-parametric density (Ballé et al. 2018, appendix 6.1): a monotone
    cumulative built from softplus-positive matrices, biases and tanh factors."""

    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3), init_scale: float = 10.0) -> None:
        super().__init__()
        widths = (1, *filters, 1)
        scale = init_scale ** (1.0 / (len(widths) - 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for k in range(len(widths) - 1):
            init = _inverse_softplus(1.0 / scale / widths[k + 1])
            self.matrices.append(nn.Parameter(torch.full((channels, widths[k + 1], widths[k]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, widths[k + 1], 1) - 0.5))
            if k < len(widths) - 2:
                self.factors.append(nn.Parameter(torch.zeros(channels, widths[k + 1], 1)))

    def logits_cumulative(self, values: torch.Tensor) -> torch.Tensor:
        """values (C, 1, K) -> logits of the cumulative at those values, (C, 1, K)."""
        logits = values
        for k, matrix in enumerate(self.matrices):
            logits = torch.matmul(F.softplus(matrix), logits) + self.biases[k]
            if k < len(self.factors):
                logits = logits + torch.tanh(self.factors[k]) * torch.tanh(logits)
        return logits

    def likelihood(self, y: torch.Tensor) -> torch.Tensor:
        """P(round(y) = y) for (N, C, H, W) y, per element."""
        n, c, h, w = y.shape
        values = y.permute(1, 0, 2, 3).reshape(c, 1, -1)
        lower = self.logits_cumulative(values - 0.5)
        upper = self.logits_cumulative(values + 0.5)
        # Evaluate in the tail where the sigmoid is not saturated (numerically stable).
        sign = -torch.sign(lower + upper).detach()
        probs = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        return lower_bound(probs.reshape(c, n, h, w).permute(1, 0, 2, 3), LIKELIHOOD_FLOOR)

    @torch.no_grad()
    def pmf_table(self, half_range: int) -> np.ndarray:
        """Per-channel probabilities of the symbols -R..R, float64 (C, 2R+1)."""
        matrices = [m.double() for m in self.matrices]
        channels = matrices[0].shape[0]
        support = torch.arange(-half_range, half_range + 1, dtype=torch.float64)
        values = support.view(1, 1, -1).expand(channels, 1, -1)

        def cumulative(v: torch.Tensor) -> torch.Tensor:
            logits = v
            for k, matrix in enumerate(matrices):
                logits = torch.matmul(F.softplus(matrix), logits) + self.biases[k].double()
                if k < len(self.factors):
                    logits = logits + torch.tanh(self.factors[k].double()) * torch.tanh(logits)
            return torch.sigmoid(logits)

        probs = cumulative(values + 0.5) - cumulative(values - 0.5)
        return probs.squeeze(1).clamp_min(0).numpy()


def gaussian_likelihood(y: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """P(round(y) = y) under a zero-mean Gaussian of the given scale (symmetric form)."""
    scales = lower_bound(scales, SCALE_MIN)
    value = torch.abs(y)
    normal = torch.distributions.Normal(0.0, 1.0)
    upper = normal.cdf((0.5 - value) / scales)
    lower = normal.cdf((-0.5 - value) / scales)
    return lower_bound(upper - lower, LIKELIHOOD_FLOOR)


def scale_table() -> torch.Tensor:
    """The fixed, log-spaced scales the coder has tables for (float64)."""
    return torch.exp(torch.linspace(math.log(SCALE_MIN), math.log(SCALE_MAX), SCALE_LEVELS, dtype=torch.float64))


def gaussian_pmf_table(half_range: int) -> np.ndarray:
    """Probabilities of symbols -R..R for every scale of `scale_table()`, float64 (L, 2R+1)."""
    from scipy.special import ndtr

    scales = scale_table().numpy()[:, None]
    support = np.arange(-half_range, half_range + 1, dtype=np.float64)[None, :]
    return ndtr((support + 0.5) / scales) - ndtr((support - 0.5) / scales)


def integer_table(probs: np.ndarray, total: int = TABLE_TOTAL) -> np.ndarray:
    """Float probabilities (..., K) -> int64 counts that sum to `total`, each at least 1.

    Pure integer arithmetic after one float64 rounding step, so the same floats always give
    the same table; the coder then only ever sees these integers."""
    probs = np.asarray(probs, dtype=np.float64)
    probs = probs / probs.sum(-1, keepdims=True)
    symbols = probs.shape[-1]
    counts = np.floor(probs * (total - symbols)).astype(np.int64) + 1
    short = total - counts.sum(-1)
    flat = counts.reshape(-1, symbols)
    for row, missing in zip(flat, short.reshape(-1)):
        row[int(np.argmax(row))] += int(missing)
    return flat.reshape(counts.shape)


class FixedGain(nn.Module):
    """Multiply by a constant. The analysis ends with x LATENT_GAIN and the synthesis starts
    with / LATENT_GAIN: latents start large against the quantisation step, so a fit of a few
    CPU minutes reaches useful rates (without it latents stay near +-5 and PSNR stalls)."""

    def __init__(self, gain: float) -> None:
        super().__init__()
        self.gain = gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gain


LATENT_GAIN = 10.0
# Pixels in [0, 1] are centred before the analysis and the offset is added back after the
# synthesis: the convolutions start at zero mean (at 300 steps of quality 7: 27.7 dB at
# 2.71 bpp against 26.7 dB at 2.94 bpp uncentred).
INPUT_OFFSET = 0.5


class _Transforms:
    """The centred analysis and synthesis shared by both codecs."""

    def encode_latent(self, x: torch.Tensor) -> torch.Tensor:
        return self.analysis(x - INPUT_OFFSET)

    def decode_latent(self, y: torch.Tensor) -> torch.Tensor:
        return self.synthesis(y) + INPUT_OFFSET


def _quantised(y: torch.Tensor, offset: torch.Tensor | float, noisy: bool) -> torch.Tensor:
    """What the synthesis sees in training: round(y - offset) + offset with a straight-through
    gradient, or (noisy=True) y plus uniform noise. Noise gives the synthesis a signal from the
    first step, while rounding maps most of the small initial latents to 0 (half of them at
    initialisation); `fit` uses it for the first steps of a fit from scratch."""
    if noisy:
        return y + torch.empty_like(y).uniform_(-0.5, 0.5)
    return y + (torch.round(y - offset) + offset - y).detach()


def _conv(cin: int, cout: int, kernel: int = 5, stride: int = 2) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2)


def _deconv(cin: int, cout: int, kernel: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, kernel, stride=stride, padding=kernel // 2, output_padding=stride - 1)


class FactorizedPriorCodec(_Transforms, nn.Module):
    """x -> g_a -> y, coded with a per-channel factorized density; y_hat -> g_s -> x_hat."""

    downsampling = 8

    def __init__(self, in_channels: int = 1, hidden: int = 48, latent: int = 64) -> None:
        super().__init__()
        self.analysis = nn.Sequential(
            _conv(in_channels, hidden),
            GDN(hidden),
            _conv(hidden, hidden),
            GDN(hidden),
            _conv(hidden, latent),
            FixedGain(LATENT_GAIN),
        )
        self.synthesis = nn.Sequential(
            FixedGain(1.0 / LATENT_GAIN),
            _deconv(latent, hidden),
            GDN(hidden, inverse=True),
            _deconv(hidden, hidden),
            GDN(hidden, inverse=True),
            _deconv(hidden, in_channels),
        )
        self.latent_density = FactorizedDensity(latent)
        self.register_buffer("latent_table", torch.zeros(latent, 2 * LATENT_RANGE + 1, dtype=torch.int64))

    def forward(self, x: torch.Tensor, *, noisy_synthesis: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
        y = self.encode_latent(x)
        y_noisy = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        return self.decode_latent(_quantised(y, 0.0, noisy_synthesis)), [self.latent_density.likelihood(y_noisy)]

    @torch.no_grad()
    def build_tables(self) -> None:
        """Freeze the coder's integer tables from the current weights (after fitting)."""
        self.latent_table.copy_(torch.from_numpy(integer_table(self.latent_density.pmf_table(LATENT_RANGE))))


class MeanScaleHyperpriorCodec(_Transforms, nn.Module):
    """Mean-scale hyperprior (Minnen et al. 2018, without the autoregressive context): a
    hyperlatent z = h_a(y), coded with a factorized density, gives through h_s(z_hat) the mean
    and scale of a Gaussian for every element of y. y is coded as round(y - mean) and rebuilt
    as that symbol + mean."""

    downsampling = 32

    def __init__(self, in_channels: int = 1, hidden: int = 48, latent: int = 64, hyper: int = 32) -> None:
        super().__init__()
        base = FactorizedPriorCodec(in_channels, hidden, latent)
        self.analysis = base.analysis
        self.synthesis = base.synthesis
        self.hyper_analysis = nn.Sequential(
            _conv(latent, hyper, 3, 1), nn.LeakyReLU(), _conv(hyper, hyper), nn.LeakyReLU(), _conv(hyper, hyper)
        )
        self.hyper_synthesis = nn.Sequential(
            _deconv(hyper, hyper), nn.LeakyReLU(), _deconv(hyper, 2 * hyper), nn.LeakyReLU(),
            _conv(2 * hyper, 2 * latent, 3, 1),
        )
        self.hyper_density = FactorizedDensity(hyper)
        self.register_buffer("hyper_table", torch.zeros(hyper, 2 * HYPER_RANGE + 1, dtype=torch.int64))
        self.register_buffer("scale_table", torch.zeros(SCALE_LEVELS, 2 * LATENT_RANGE + 1, dtype=torch.int64))

    def gaussian_parameters(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(means, scales) of y from a (noisy or decoded) hyperlatent; softplus keeps scales
        positive without a ReLU that could die."""
        means, scales = self.hyper_synthesis(z_hat).chunk(2, dim=1)
        return means, F.softplus(scales)

    def quantised_parameters(
        self, z_hat: torch.Tensor, quantise: Callable[[torch.Tensor], torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(means, scales, y_hat) with y_hat = quantise(means): y quantised around its means, the
        way this model codes it (the checkerboard codec overrides it with its two passes)."""
        means, scales = self.gaussian_parameters(z_hat)
        return means, scales, quantise(means)

    def forward(self, x: torch.Tensor, *, noisy_synthesis: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
        y = self.encode_latent(x)
        z = self.hyper_analysis(y)
        z_noisy = z + torch.empty_like(z).uniform_(-0.5, 0.5)
        means, scales = self.gaussian_parameters(z_noisy)
        # The rate sees uniform noise (differentiable likelihoods); the synthesis sees the rounded
        # symbols it will get when decoding, with a straight-through gradient (Minnen & Singh 2020).
        y_noisy = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        likelihoods = [gaussian_likelihood(y_noisy - means, scales), self.hyper_density.likelihood(z_noisy)]
        return self.decode_latent(_quantised(y, means, noisy_synthesis)), likelihoods

    @torch.no_grad()
    def build_tables(self) -> None:
        self.hyper_table.copy_(torch.from_numpy(integer_table(self.hyper_density.pmf_table(HYPER_RANGE))))
        self.scale_table.copy_(torch.from_numpy(integer_table(gaussian_pmf_table(LATENT_RANGE))))

    @torch.no_grad()
    def coding_parameters(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(means, index into the fixed scale table) for every element of y, from the decoded
        hyperlatent (the smallest tabulated scale at or above the predicted one)."""
        means, scales = self.gaussian_parameters(z_hat)
        scales = scales.double().clamp(SCALE_MIN, SCALE_MAX)
        return means, torch.bucketize(scales, scale_table().to(scales.device)).clamp_max(SCALE_LEVELS - 1)


def distortion(x_hat: torch.Tensor, x: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """What lambda weighs against the rate, for pixels in [0, 1]: 255^2 * MSE (`mse`), or
    1 - MS-SSIM (`ms-ssim`, torchmetrics, data_range 1, the batch's mean).

    MS-SSIM uses the report's rule (synthmed.compress.report.ms_ssim_betas): the standard 11 px
    Gaussian window and as many of the five standard scales as torchmetrics accepts at this
    size, their weights renormalised. Fits run on 64 px crops, where that is 3 scales (5 need
    176 px, 4 need 99 px with this window); a smaller window would give more scales but
    optimise another measure than the one the report computes at the same size."""
    if kind == "mse":
        return 255.0**2 * F.mse_loss(x_hat, x)
    if kind != "ms-ssim":
        raise ValueError(f"unknown distortion {kind!r}")
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

    from synthmed.compress.report import ms_ssim_betas
    from synthmed.errors import UsageError

    betas = ms_ssim_betas(*x.shape[-2:])
    if betas is None:
        raise UsageError(f"images of {x.shape[-2]}x{x.shape[-1]} px are too small for MS-SSIM (11 px at least); "
                         "use --distortion mse")
    return 1.0 - multiscale_structural_similarity_index_measure(x_hat, x, data_range=1.0, betas=betas, normalize="relu")


def rate_distortion_loss(
    x: torch.Tensor, x_hat: torch.Tensor, likelihoods: list[torch.Tensor], lmbda: float, kind: str = "mse"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, bits per pixel, mse) with loss = lambda * distortion + bpp: lambda * 255^2 * MSE
    + bpp, or (kind="ms-ssim") lambda * (1 - MS-SSIM) + bpp."""
    pixels = x.shape[0] * x.shape[2] * x.shape[3]
    bpp = sum(torch.log2(lik).sum() for lik in likelihoods) / -pixels
    mse = F.mse_loss(x_hat, x)
    if kind == "mse":
        return lmbda * 255.0**2 * mse + bpp, bpp, mse  # this order of products: the bytes of earlier fits
    return lmbda * distortion(x_hat, x, kind) + bpp, bpp, mse

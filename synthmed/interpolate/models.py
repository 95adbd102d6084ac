"""Autoencoders for latent interpolation (`synthmed interpolate`).

All map float (N, C, H, W) in [0, 1] to a latent code with `encode(x)` and back with
`decode(z)` (a sigmoid keeps outputs in [0, 1], so BCE is a valid fitting loss).
`fit_loss(x, reconstruction_loss)` is the training objective; it defaults to the
reconstruction loss and adds the KL term for the VAE.

- `ConvAutoencoder` (`cnn-ae`): the generative U-Net report's minimal autoencoder, one
  strided convolution and one transposed convolution, `width` 8, 16 or 32 channels.
- `NoSkipUNetAutoencoder` (`unet-ae`): a U-Net (Ronneberger et al.) with its skip
  connections removed so the bottleneck carries everything; widths 64/128/256/512 times
  `width_mult`, as many levels as the image size allows.
- `ConvVAE` (`vae`): a variational autoencoder with a vector latent; its KL term keeps the
  latent space smooth, so mixtures of codes decode to plausible images more often.
- `AdversarialInterpolationAutoencoder` (`acai`): ACAI's critic predicts the mixing weight of
  a decoded interpolant and the autoencoder learns to fool it; it brings its own
  `fit_optimizers` / `fit_step` because the critic is trained alongside.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import nn
from torchvision.ops import Conv2dNormActivation

ReconstructionLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _size_pair(image_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    height, width = image_size
    return int(height), int(width)


def _halvings(size: tuple[int, int], levels: int) -> list[tuple[int, int]]:
    """Spatial sizes after 0, 1, ..., levels stride-2 steps (floor, as conv/pool do)."""
    sizes = [size]
    for _ in range(levels):
        sizes.append((sizes[-1][0] // 2, sizes[-1][1] // 2))
    return sizes


def auto_levels(size: tuple[int, int], *, max_levels: int, min_side: int = 4) -> int:
    """How many halvings keep the smallest feature map at least `min_side` pixels wide."""
    possible = int(math.floor(math.log2(max(1, min(size) / min_side))))
    return max(1, min(max_levels, possible + 1))


class Autoencoder(nn.Module):
    """Common interface; subclasses define `encode` and `decode`."""

    def encode(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def fit_loss(self, x: torch.Tensor, reconstruction_loss: ReconstructionLoss) -> torch.Tensor:
        return reconstruction_loss(self(x), x)


class ConvAutoencoder(Autoencoder):
    """One conv (stride 2) + ReLU, one transposed conv + sigmoid."""

    def __init__(self, *, in_channels: int = 1, image_size: int | Sequence[int] = 64, width: int = 16) -> None:
        super().__init__()
        if width < 1:
            raise ValueError("width must be at least 1")
        self.image_size = _size_pair(image_size)
        self.encoder = nn.Sequential(nn.Conv2d(in_channels, width, 4, stride=2, padding=1), nn.ReLU())
        self.up = nn.ConvTranspose2d(width, in_channels, 4, stride=2, padding=1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        # output_size restores odd sides that the stride-2 conv floored.
        return torch.sigmoid(self.up(z, output_size=self.image_size))


def _double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """U-Net's block: (3x3 conv, batch norm, ReLU) twice."""
    return nn.Sequential(
        Conv2dNormActivation(in_channels, out_channels, 3), Conv2dNormActivation(out_channels, out_channels, 3)
    )


class NoSkipUNetAutoencoder(Autoencoder):
    """U-Net encoder/decoder without skip connections: everything passes the bottleneck."""

    def __init__(
        self,
        *,
        in_channels: int = 1,
        image_size: int | Sequence[int] = 64,
        base_widths: Sequence[int] = (64, 128, 256, 512),
        width_mult: float = 1.0,
        levels: int | None = None,
    ) -> None:
        super().__init__()
        if width_mult <= 0:
            raise ValueError("width_mult must be positive")
        size = _size_pair(image_size)
        levels = levels or auto_levels(size, max_levels=len(base_widths))
        if not 1 <= levels <= len(base_widths):
            raise ValueError(f"levels must be between 1 and {len(base_widths)}")
        widths = [max(1, round(w * width_mult)) for w in base_widths[:levels]]
        self.sizes = _halvings(size, levels - 1)
        self.image_size = size
        self.inc = _double_conv(in_channels, widths[0])
        self.downs = nn.ModuleList(
            nn.Sequential(nn.MaxPool2d(2), _double_conv(widths[i - 1], widths[i])) for i in range(1, levels)
        )
        self.ups = nn.ModuleList(nn.ConvTranspose2d(widths[i], widths[i - 1], 2, stride=2) for i in range(levels - 1, 0, -1))
        self.up_convs = nn.ModuleList(_double_conv(widths[i - 1], widths[i - 1]) for i in range(levels - 1, 0, -1))
        self.out = nn.Conv2d(widths[0], in_channels, 1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        x = self.inc(x)
        for down in self.downs:
            x = down(x)
        return x

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        x = z
        targets = list(reversed(self.sizes[:-1]))
        for up, conv, target in zip(self.ups, self.up_convs, targets):
            x = conv(up(x, output_size=target))
        return torch.sigmoid(self.out(x))


class ConvVAE(Autoencoder):
    """Strided-conv encoder to a `latent_dim` Gaussian, mirrored decoder.

    `encode` returns the posterior mean (deterministic, what interpolation mixes);
    `fit_loss` samples with the reparameterisation trick and adds beta * KL per pixel."""

    def __init__(
        self,
        *,
        in_channels: int = 1,
        image_size: int | Sequence[int] = 64,
        base_width: int = 32,
        latent_dim: int = 64,
        beta: float = 1.0,
    ) -> None:
        super().__init__()
        size = _size_pair(image_size)
        levels = auto_levels(size, max_levels=4)
        widths = [base_width * 2**i for i in range(levels)]
        self.sizes = _halvings(size, levels)
        self.beta = beta
        self.latent_dim = latent_dim
        blocks, previous = [], in_channels
        for width in widths:
            blocks.append(Conv2dNormActivation(previous, width, 4, stride=2, padding=1))
            previous = width
        self.encoder = nn.Sequential(*blocks, nn.Flatten())
        bottom = self.sizes[-1]
        self.flat = widths[-1] * bottom[0] * bottom[1]
        self.to_stats = nn.Linear(self.flat, 2 * latent_dim)
        self.from_latent = nn.Linear(latent_dim, self.flat)
        self.bottom_shape = (widths[-1], *bottom)
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(widths[i], widths[i - 1] if i else base_width, 4, stride=2, padding=1)
            for i in range(levels - 1, -1, -1)
        )
        self.acts = nn.ModuleList(nn.Sequential(nn.BatchNorm2d(m.out_channels), nn.ReLU()) for m in self.ups)
        self.out = nn.Conv2d(base_width, in_channels, 3, padding=1)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_var = self.to_stats(self.encoder(x)).chunk(2, dim=1)
        return mean, log_var.clamp(-30.0, 20.0)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.posterior(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        x = self.from_latent(z).view(-1, *self.bottom_shape)
        targets = list(reversed(self.sizes[:-1]))
        for up, act, target in zip(self.ups, self.acts, targets):
            x = act(up(x, output_size=target))
        return torch.sigmoid(self.out(x))

    def fit_loss(self, x: torch.Tensor, reconstruction_loss: ReconstructionLoss) -> torch.Tensor:
        mean, log_var = self.posterior(x)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)
        kl = -0.5 * torch.sum(1 + log_var - mean.pow(2) - log_var.exp(), dim=1).mean()
        return reconstruction_loss(self.decode(z), x) + self.beta * kl / x[0].numel()


class _ConvStack(nn.Module):
    """Stride-2 4x4 convs (LeakyReLU, no normalisation: ACAI's critic must see single images)."""

    def __init__(self, in_channels: int, widths: Sequence[int], out_channels: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous = in_channels
        for width in widths:
            layers += [nn.Conv2d(previous, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            previous = width
        layers.append(nn.Conv2d(previous, out_channels, 3, padding=1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class AdversarialInterpolationAutoencoder(Autoencoder):
    """ACAI (Berthelot et al., 2019, "Understanding and improving interpolation in
    autoencoders via an adversarial regularizer").

    A critic learns to predict the mixing weight alpha from a decoded interpolant; the
    autoencoder is trained to make it answer 0 (as for a real image), which pushes decoded
    interpolants towards realistic images. Only `encode`/`decode` are used afterwards; the
    critic's weights are saved with the model."""

    def __init__(
        self,
        *,
        in_channels: int = 1,
        image_size: int | Sequence[int] = 64,
        base_width: int = 32,
        latent_channels: int = 16,
        critic_weight: float = 0.5,
        reconstruction_mix: float = 0.2,
    ) -> None:
        super().__init__()
        size = _size_pair(image_size)
        levels = auto_levels(size, max_levels=4)
        widths = [base_width * 2**i for i in range(levels)]
        self.sizes = _halvings(size, levels)
        self.critic_weight = critic_weight
        self.reconstruction_mix = reconstruction_mix
        self.encoder = _ConvStack(in_channels, widths, latent_channels)
        self.ups = nn.ModuleList()
        previous = latent_channels
        for width in reversed(widths):
            self.ups.append(nn.ConvTranspose2d(previous, width, 4, stride=2, padding=1))
            previous = width
        self.act = nn.LeakyReLU(0.2)
        self.out = nn.Conv2d(previous, in_channels, 3, padding=1)
        self.critic = _ConvStack(in_channels, widths, 1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        x = z
        for up, target in zip(self.ups, reversed(self.sizes[:-1])):
            x = self.act(up(x, output_size=target))
        return torch.sigmoid(self.out(x))

    def judge(self, x: torch.Tensor) -> torch.Tensor:
        """The critic's estimate of alpha for each image, (N,)."""
        return self.critic(x).mean(dim=(1, 2, 3))

    def fit_optimizers(self, lr: float) -> list[torch.optim.Optimizer]:
        autoencoder = [p for name, p in self.named_parameters() if not name.startswith("critic.")]
        return [torch.optim.Adam(autoencoder, lr=lr), torch.optim.Adam(self.critic.parameters(), lr=lr)]

    def fit_step(self, x: torch.Tensor, reconstruction_loss: ReconstructionLoss,
                 optimizers: Sequence[torch.optim.Optimizer]) -> float:
        """One ACAI step: the autoencoder (reconstruction + fooling the critic), then the critic."""
        autoencoder_opt, critic_opt = optimizers
        z = self.encode(x)
        reconstruction = self.decode(z)
        alpha = 0.5 * torch.rand(len(x), device=x.device)  # in [0, 0.5]: the nearer parent is the first
        partner = torch.roll(torch.arange(len(x), device=x.device), 1)
        mixed = self.decode(alpha.view(-1, 1, 1, 1) * z + (1 - alpha.view(-1, 1, 1, 1)) * z[partner])
        loss = reconstruction_loss(reconstruction, x) + self.critic_weight * self.judge(mixed).pow(2).mean()
        autoencoder_opt.zero_grad(set_to_none=True)
        loss.backward()
        autoencoder_opt.step()
        # The critic: alpha for interpolants, 0 for (blends of) real images and reconstructions.
        blend = self.reconstruction_mix * x + (1 - self.reconstruction_mix) * reconstruction.detach()
        critic_loss = (self.judge(mixed.detach()) - alpha).pow(2).mean() + self.judge(blend).pow(2).mean()
        critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        critic_opt.step()
        return float(loss.detach())

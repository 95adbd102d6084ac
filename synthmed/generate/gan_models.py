"""GAN networks: the AC-GAN of the cross-modality paper and the DCGAN of Radford et al.

Both upsample a small dense seed by four stride-2 transposed convolutions, so the seed
is (H/16, W/16): 7x7 at the paper's 112 px, 4x4 at DCGAN's 64 px. Images are float in
[-1, 1] inside the networks (tanh output).
"""

from __future__ import annotations

import torch
from torch import nn

UPSAMPLINGS = 4  # four stride-2 (transposed) convolutions: the seed is size / 16


def seed_size(image_size: tuple[int, int]) -> tuple[int, int]:
    """(H/16, W/16); raises ValueError when a side is not a multiple of 16."""
    height, width = image_size
    step = 2**UPSAMPLINGS
    if height % step or width % step:
        raise ValueError(f"image size {height}x{width}: GAN generators need sides that are multiples of {step}")
    return height // step, width // step


def init_dcgan_weights(module: nn.Module) -> None:
    """N(0, 0.02) for convolutions and N(1, 0.02) for batch-norm scales (Radford et al.)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(layer.weight, 0.0, 0.02)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, 0.02)
            nn.init.zeros_(layer.bias)


class UpsamplingGenerator(nn.Module):
    """Noise (plus an optional label embedding) -> dense seed -> 4 transposed convs -> image.

    With `num_classes` > 0 this is the AC-GAN generator (the label is embedded in
    `label_dim` dimensions and concatenated to the noise); with 0 it is DCGAN's."""

    def __init__(self, *, latent_dim: int, channels: int, image_size: tuple[int, int], width: int = 64,
                 num_classes: int = 0, label_dim: int = 50) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.seed_shape = (width * 8, *seed_size(image_size))
        self.label_embedding = nn.Embedding(num_classes, label_dim) if num_classes else None
        in_features = latent_dim + (label_dim if num_classes else 0)
        self.dense = nn.Sequential(
            nn.Linear(in_features, width * 8 * self.seed_shape[1] * self.seed_shape[2], bias=False),
        )
        self.seed_norm = nn.Sequential(nn.BatchNorm2d(width * 8), nn.ReLU(inplace=True))
        widths = [width * 8, width * 4, width * 2, width]
        layers: list[nn.Module] = []
        for w_in, w_out in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(w_in, w_out, 4, 2, 1, bias=False), nn.BatchNorm2d(w_out), nn.ReLU(inplace=True)]
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh()]
        self.upsample = nn.Sequential(*layers)

    def forward(self, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.label_embedding is not None:
            noise = torch.cat([noise, self.label_embedding(labels)], dim=1)
        seed = self.dense(noise).view(noise.shape[0], *self.seed_shape)
        return self.upsample(self.seed_norm(seed))


class Discriminator(nn.Module):
    """4 stride-2 convolutions (batch norm after the first unless `batch_norm` is false,
    LeakyReLU 0.2, optional dropout), then a real/fake logit and, when `num_classes` > 0,
    class logits (AC-GAN's second head)."""

    def __init__(self, *, channels: int, image_size: tuple[int, int], width: int = 64, num_classes: int = 0,
                 dropout: float = 0.0, batch_norm: bool = True) -> None:
        super().__init__()
        widths = [channels, width, width * 2, width * 4, width * 8]
        layers: list[nn.Module] = []
        for i, (w_in, w_out) in enumerate(zip(widths, widths[1:])):
            layers.append(nn.Conv2d(w_in, w_out, 4, 2, 1, bias=i == 0 or not batch_norm))
            if i > 0 and batch_norm:
                layers.append(nn.BatchNorm2d(w_out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            if dropout:
                layers.append(nn.Dropout(dropout))
        self.features = nn.Sequential(*layers, nn.Flatten())
        seed_h, seed_w = seed_size(image_size)
        features = width * 8 * seed_h * seed_w
        self.real_fake = nn.Linear(features, 1)
        self.classify = nn.Linear(features, num_classes) if num_classes else None

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        features = self.features(images)
        logits = self.classify(features) if self.classify is not None else None
        return self.real_fake(features).squeeze(1), logits

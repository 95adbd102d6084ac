"""What each learned variant writes into its range-coded stream, and how it reads it back.

- factorized: y, grouped by channel (the factorized density's tables).
- hyperprior: z grouped by channel, then y - mean grouped by scale index, both from z_hat.
- checkerboard: z, then the anchors of y (parameters from z_hat alone), then the
  non-anchors (parameters from z_hat and the decoded anchors), each grouped by scale index.

Symbols are round(y - mean) clamped to the coder's range; the decoder rebuilds y as symbol +
mean. `Latents.y_hat` is what the decoder will rebuild, computed on the encoder's side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from synthmed.compress.entropy_coding import (
    channel_of,
    decode_grouped,
    encode_grouped,
    from_symbols,
    to_symbols,
)
from synthmed.compress.models import HYPER_RANGE, LATENT_RANGE


@dataclass
class Latents:
    symbols: torch.Tensor  # round(y - means), clamped
    z_hat: torch.Tensor | None
    means: torch.Tensor | None
    indices: torch.Tensor | None  # scale-table index of every element of y

    @property
    def y_hat(self) -> torch.Tensor:
        return self.symbols if self.means is None else self.symbols + self.means


def quantise(model: Any, variant: str, y: torch.Tensor, z: torch.Tensor | None) -> Latents:
    """The coder's symbols of latents y (and hyperlatents z) of one image."""
    if variant == "factorized":
        return Latents(torch.round(y).clamp(-LATENT_RANGE, LATENT_RANGE), None, None, None)
    z_hat = torch.round(z).clamp(-HYPER_RANGE, HYPER_RANGE)
    if variant == "hyperprior":
        means, indices = model.coding_parameters(z_hat)
        return Latents(torch.round(y - means).clamp(-LATENT_RANGE, LATENT_RANGE), z_hat, means, indices)
    from synthmed.compress.checkerboard import anchor_mask, rounded_symbols

    features, means_a, indices_a = model.anchor_coding(z_hat)
    symbols_a = rounded_symbols(y, means_a)
    means_n, indices_n = model.nonanchor_coding(features, symbols_a, means_a)
    anchors = anchor_mask(*y.shape[-2:])
    means = torch.where(anchors, means_a, means_n)
    symbols = torch.where(anchors, symbols_a, rounded_symbols(y, means_n))
    return Latents(symbols, z_hat, means, torch.where(anchors, indices_a, indices_n))


def _anchor_flags(shape: tuple[int, ...]) -> np.ndarray:
    """True for the anchors among the elements of a (1, C, H, W) tensor, in C, H, W order."""
    from synthmed.compress.checkerboard import anchor_mask

    return anchor_mask(*shape[-2:]).expand(shape).flatten().numpy()


def write(coder, model: Any, variant: str, latents: Latents) -> None:
    symbols = to_symbols(latents.symbols, LATENT_RANGE)
    if variant == "factorized":
        encode_grouped(coder, symbols, channel_of(latents.symbols.shape), model.latent_table)
        return
    z_hat = latents.z_hat
    encode_grouped(coder, to_symbols(z_hat, HYPER_RANGE), channel_of(z_hat.shape), model.hyper_table)
    indices = latents.indices.flatten().numpy()
    if variant == "hyperprior":
        encode_grouped(coder, symbols, indices, model.scale_table)
        return
    anchors = _anchor_flags(tuple(latents.symbols.shape))
    encode_grouped(coder, symbols[anchors], indices[anchors], model.scale_table)
    encode_grouped(coder, symbols[~anchors], indices[~anchors], model.scale_table)


def read(decoder, model: Any, variant: str, y_shape: tuple[int, ...], z_shape: tuple[int, ...]) -> torch.Tensor:
    """y_hat of one image from its stream (the order `write` put it in)."""
    if variant == "factorized":
        return from_symbols(decode_grouped(decoder, channel_of(y_shape), model.latent_table), LATENT_RANGE, y_shape)
    z_hat = from_symbols(decode_grouped(decoder, channel_of(z_shape), model.hyper_table), HYPER_RANGE, z_shape)
    if variant == "hyperprior":
        means, indices = model.coding_parameters(z_hat)
        y_hat = from_symbols(decode_grouped(decoder, indices.flatten().numpy(), model.scale_table), LATENT_RANGE, y_shape)
        return y_hat + means
    from synthmed.compress.checkerboard import anchor_mask

    anchors = _anchor_flags(y_shape)
    features, means_a, indices_a = model.anchor_coding(z_hat)
    flat = np.full(anchors.shape, LATENT_RANGE, dtype=np.int32)  # symbol 0 at the non-anchors for now
    flat[anchors] = decode_grouped(decoder, indices_a.flatten().numpy()[anchors], model.scale_table)
    symbols_a = from_symbols(flat, LATENT_RANGE, y_shape)
    means_n, indices_n = model.nonanchor_coding(features, symbols_a, means_a)
    flat[~anchors] = decode_grouped(decoder, indices_n.flatten().numpy()[~anchors], model.scale_table)
    mask = anchor_mask(*y_shape[-2:])
    symbols = from_symbols(flat, LATENT_RANGE, y_shape)
    return symbols + torch.where(mask, means_a, means_n)

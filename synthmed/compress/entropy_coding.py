"""Range coding of integer latents with the models' integer probability tables (constriction's queue coder)."""

from __future__ import annotations

import numpy as np


def channel_of(shape: tuple[int, ...]) -> np.ndarray:
    """The channel of every element of a (1, C, H, W) tensor, in C, H, W order."""
    channels, height, width = shape[1:]
    return np.repeat(np.arange(channels), height * width)


# Symbols are coded table by table: all symbols that share a probability table go in one
# call with one fixed model, in raster order. A per-symbol table (one row of 255 floats for
# every latent) made coding ~100x slower; the decoder knows every symbol's table before it
# decodes (channel, or scale index from the hyperlatent), so it reads them back the same way.


def encode_grouped(coder, symbols: np.ndarray, groups: np.ndarray, table) -> None:
    import constriction

    counts = table.numpy()
    for row in np.unique(groups):
        model = constriction.stream.model.Categorical(counts[row].astype(np.float64), perfect=False)
        coder.encode(symbols[groups == row], model)


def decode_grouped(decoder, groups: np.ndarray, table) -> np.ndarray:
    import constriction

    counts = table.numpy()
    symbols = np.empty(len(groups), dtype=np.int32)
    for row in np.unique(groups):
        where = groups == row
        model = constriction.stream.model.Categorical(counts[row].astype(np.float64), perfect=False)
        symbols[where] = decoder.decode(model, int(where.sum()))
    return symbols


def to_symbols(values, half_range: int) -> np.ndarray:
    """Integer-valued latents (1, C, H, W) -> coder symbols 0..2R, in C, H, W order."""
    import torch

    return (values.flatten().to(torch.int64) + half_range).numpy().astype(np.int32)


def from_symbols(symbols: np.ndarray, half_range: int, shape: tuple[int, ...]):
    import torch

    return torch.from_numpy(symbols.astype(np.int64) - half_range).float().reshape(shape)

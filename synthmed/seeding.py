"""Seeds: one user seed, derived per item so results do not depend on order or sharding."""

from __future__ import annotations

import hashlib


def derive_seed(seed: int, *keys: object) -> int:
    """A stable 63-bit seed for (seed, keys...), independent of Python's hash randomisation."""
    text = "\x1f".join([str(seed), *map(str, keys)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA) for a reproducible run."""
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)

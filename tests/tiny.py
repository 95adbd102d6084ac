"""Constructor arguments that make each built-in component tiny, shared by the registry smoke
test and the deeper tests of each kind. A component not listed is built with its defaults.
`textured_images` is the codecs' tiny input."""

from __future__ import annotations

from typing import Any

TINY: dict[str, dict[str, dict[str, Any]]] = {
    "generator": {
        "acgan": {"width": 8, "batch_size": 4},
        "dcgan": {"width": 8, "batch_size": 4},
        "ddpm": {"preset": "tiny", "batch_size": 4, "steps": 3},
    },
    "autoencoder": {
        "cnn-ae": {"width": 8},
        "unet-ae": {"base_width": 4},
        "vae": {"base_width": 4, "latent_dim": 8},
        "acai": {"base_width": 4, "latent_channels": 4},
    },
    "codec": {
        "learned-factorized": {"hidden": 8, "latent": 8},
        "learned-hyperprior": {"hidden": 8, "latent": 8, "hyper": 4},
        "learned-checkerboard": {"hidden": 8, "latent": 8, "hyper": 4},
    },
}


def tiny_args(kind: str, name: str) -> dict[str, Any]:
    return dict(TINY.get(kind, {}).get(name, {}))


def textured_images(side: int, count: int = 8):
    """(count, 1, side, side) uint8: smooth waves plus seeded noise, something a codec must
    spend bits on and a tiny model learns in a few steps."""
    import numpy as np

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:side, 0:side]
    base = (np.sin(xx / 3.0) + np.cos(yy / 4.0)) * 60 + 128
    return np.stack([(base + rng.normal(0, 8, base.shape)).clip(0, 255) for _ in range(count)])[:, None].astype(np.uint8)

"""Constructor arguments that make each built-in component tiny, shared by the registry smoke
test and the deeper tests of each kind. A component not listed is built with its defaults."""

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

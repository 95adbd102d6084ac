"""synthmed: synthetic-data augmentation for small medical-imaging datasets.

The public API is small on purpose. Names are imported on first use (PEP 562), so that
`import synthmed` (and with it `synthmed --help`) loads neither numpy nor torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "hookimpl": "synthmed.hookspecs",
    "SynthmedError": "synthmed.errors",
    "UsageError": "synthmed.errors",
    "DatasetError": "synthmed.errors",
    "Dataset": "synthmed.data",
    "DatasetWriter": "synthmed.data",
    "get_entry": "synthmed.registry",
    "list_entries": "synthmed.registry",
    "create_classifier": "synthmed.registry",
    "create_generator": "synthmed.registry",
    "create_autoencoder": "synthmed.registry",
    "create_codec": "synthmed.registry",
    "list_classifiers": "synthmed.registry",
    "list_generators": "synthmed.registry",
    "list_augmentations": "synthmed.registry",
    "list_autoencoders": "synthmed.registry",
    "list_codecs": "synthmed.registry",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'synthmed' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

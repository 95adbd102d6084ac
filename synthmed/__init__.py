"""synthmed: synthetic-data augmentation for small medical-imaging datasets.

The public API is small on purpose. Names are imported on first use (PEP 562), so that
`import synthmed` (and with it `synthmed --help`) loads neither numpy nor torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the names below are, for type checkers and editors (nothing runs here)
    from synthmed.data import Dataset, DatasetWriter
    from synthmed.errors import DatasetError, SynthmedError, UsageError
    from synthmed.hookspecs import hookimpl
    from synthmed.registry import (
        create_autoencoder,
        create_classifier,
        create_codec,
        create_generator,
        create_policy,
        get_entry,
        list_augmentations,
        list_autoencoders,
        list_classifiers,
        list_codecs,
        list_entries,
        list_generators,
    )

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
    "create_policy": "synthmed.registry",
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

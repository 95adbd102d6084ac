"""synthmed: synthetic-data augmentation for small medical-imaging datasets.

The public API is small on purpose; everything here imports without torch.
"""

__version__ = "0.1.0"

from synthmed.hookspecs import hookimpl
from synthmed.errors import SynthmedError, UsageError, DatasetError
from synthmed.dataset import Dataset, DatasetWriter
from synthmed.registry import (
    get_entry,
    list_entries,
    create_classifier,
    create_generator,
    create_autoencoder,
    create_codec,
    list_classifiers,
    list_generators,
    list_augmentations,
    list_autoencoders,
    list_codecs,
)

__all__ = [
    "__version__",
    "hookimpl",
    "SynthmedError",
    "UsageError",
    "DatasetError",
    "Dataset",
    "DatasetWriter",
    "get_entry",
    "list_entries",
    "create_classifier",
    "create_generator",
    "create_autoencoder",
    "create_codec",
    "list_classifiers",
    "list_generators",
    "list_augmentations",
    "list_autoencoders",
    "list_codecs",
]

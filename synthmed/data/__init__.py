"""The dataset folder every command reads and writes (docs/dataset.md).

    DATASET/
      dataset.json     format version, classes, image size, channels, train statistics, provenance
      metadata.csv     one row per image, columns COLUMNS (+ any extra columns, carried through)
      <split>/<label>/<id>.png

Modules by concern: `schema` (columns and the checks), `reading` (`Dataset`), `writing`
(`OutputFolder`, `DatasetWriter`), `journal` (the resume record), `leakage`, `imageio`
(pixels and PNG), `sample` (the embedded phantoms of `synthmed sample-data`).
"""

from synthmed.data.journal import JOURNAL
from synthmed.data.leakage import check_leakage, find_leaks
from synthmed.data.reading import Dataset, iter_chunks
from synthmed.data.schema import COLUMNS, HELD_OUT_SPLITS, SOURCES, SPLITS, Row, origins_of
from synthmed.data.writing import DatasetWriter, OutputFolder, partial_path, provenance, refuse_output_over_inputs

__all__ = [
    "COLUMNS",
    "HELD_OUT_SPLITS",
    "JOURNAL",
    "SOURCES",
    "SPLITS",
    "Dataset",
    "DatasetWriter",
    "OutputFolder",
    "Row",
    "check_leakage",
    "find_leaks",
    "iter_chunks",
    "origins_of",
    "partial_path",
    "provenance",
    "refuse_output_over_inputs",
]

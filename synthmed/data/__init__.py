"""The dataset folder every command reads and writes (docs/dataset.md).

    DATASET/
      dataset.json     format version, classes, image size, channels, train statistics, provenance
      metadata.csv     one row per image, columns COLUMNS (+ any extra columns, carried through)
      <split>/<label>/<id>.png

Modules by concern: `schema` (columns and the checks), `reading` (`Dataset`), `output`
(`OutputFolder`: any output, written atomically), `writing` (`DatasetWriter`), `journal` (the
resume record and its reader), `resume` (the options `--resume` checks), `images` (the one
check of image files), `rejected` (rejected.csv), `leakage`, `imageio` (pixels and
PNG), `sample` (the embedded phantoms of `synthmed sample-data`).
"""

from synthmed.data.journal import JOURNAL, read_journal, written_ids
from synthmed.data.leakage import check_leakage, find_leaks
from synthmed.data.output import OutputFolder, partial_path, provenance, refuse_output_over_inputs
from synthmed.data.reading import Dataset, iter_chunks
from synthmed.data.resume import RunOptions
from synthmed.data.rejected import REJECTED_FILE, RejectedLog, rejection_reason
from synthmed.data.schema import COLUMNS, HELD_OUT_SPLITS, SOURCES, SPLITS, Row, origins_of
from synthmed.data.writing import DatasetWriter

__all__ = [
    "COLUMNS",
    "HELD_OUT_SPLITS",
    "JOURNAL",
    "REJECTED_FILE",
    "SOURCES",
    "SPLITS",
    "Dataset",
    "DatasetWriter",
    "OutputFolder",
    "RejectedLog",
    "Row",
    "RunOptions",
    "check_leakage",
    "find_leaks",
    "iter_chunks",
    "origins_of",
    "partial_path",
    "provenance",
    "read_journal",
    "refuse_output_over_inputs",
    "rejection_reason",
    "written_ids",
]

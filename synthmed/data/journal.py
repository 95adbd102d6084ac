"""The resume journal of an output being written: one JSON record per finished row,
appended to `rows.jsonl` inside the hidden `.OUT.partial/` folder."""

from __future__ import annotations

JOURNAL = "rows.jsonl"

"""The one journal reader and the one rejected.csv format."""

from __future__ import annotations

import csv

from synthmed.data import DatasetWriter, RejectedLog, partial_path, read_journal, written_ids
from synthmed.data.rejected import REJECTED_COLUMNS, rejection_reason


def test_read_journal_stops_at_a_line_cut_short(tmp_path):
    path = tmp_path / "rows.jsonl"
    assert read_journal(path) == []
    path.write_text('{"id": "a"}\n{"id": "b"}\n{"id": "c", "fi')
    assert [r["id"] for r in read_journal(path)] == ["a", "b"]


def test_written_ids_of_an_unfinished_and_of_a_finished_output(tmp_path):
    import numpy as np

    out = tmp_path / "out"
    assert written_ids(out) == set()
    try:
        with DatasetWriter(out, classes=["x"], command="test", resumable=True) as writer:
            writer.add_image(np.zeros((8, 8), np.uint8), id="a", label="x", split="train")
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert written_ids(out) == {"a"} and partial_path(out).is_dir()
    with DatasetWriter(out, classes=["x"], command="test", resume=True, resumable=True) as writer:
        assert writer.has("a")
        writer.add_image(np.zeros((8, 8), np.uint8), id="b", label="x", split="train")
    assert written_ids(out) == {"a", "b"}  # a finished output: `--resume` continues it


def test_only_a_resumable_writer_keeps_a_journal(tmp_path):
    """Only --resume reads the journal, and a writer that cannot resume removes its folder on a
    failure: writing (and flushing) a line per row for nothing is left out."""
    import numpy as np

    from synthmed.data import JOURNAL
    from synthmed.data.resume import RunOptions

    for resumable in (False, True):
        out = tmp_path / f"out-{resumable}"
        options = RunOptions("test") if resumable else None
        with DatasetWriter(out, classes=["x"], command="test", resumable=resumable, options=options) as writer:
            writer.add_image(np.zeros((8, 8), np.uint8), id="a", label="x", split="train")
            assert (writer.tmp / JOURNAL).is_file() == resumable
        assert not (out / JOURNAL).exists() and (out / "metadata.csv").is_file()


def test_rejected_csv_one_format(tmp_path):
    log = RejectedLog(tmp_path)
    log.add("v1", "src1", rejection_reason(ValueError("refused\nsecond line")))
    log.add_all([("", "raw/bad.png", "no usable image")])
    with open(tmp_path / "rejected.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == REJECTED_COLUMNS == ("id", "source", "reason")
    assert rows == [{"id": "v1", "source": "src1", "reason": "ValueError: refused"},
                    {"id": "", "source": "raw/bad.png", "reason": "no usable image"}]
    again = RejectedLog(tmp_path)  # --resume reads the earlier entries back
    again.forget(["v1", "raw/bad.png"])
    assert not (tmp_path / "rejected.csv").exists()

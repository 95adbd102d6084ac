"""`OutputFolder` as a context manager: commit on success, discard on error or signal, keep
the unfinished folder of a resumable output for --resume (but never after bad input)."""

from __future__ import annotations

import pytest

from synthmed.data import OutputFolder, RunOptions, partial_path
from synthmed.errors import UsageError


def test_success_commits(tmp_path):
    out = tmp_path / "out"
    with OutputFolder(out, inputs=[]) as folder:
        (folder.tmp / "a.txt").write_text("x")
        assert not out.exists()
    assert (out / "a.txt").read_text() == "x" and not partial_path(out).exists()


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt(), SystemExit(143), UsageError("bad")])
def test_any_failure_discards_an_output_that_cannot_resume(tmp_path, error):
    out = tmp_path / "out"
    with pytest.raises(type(error)):
        with OutputFolder(out, inputs=[]) as folder:
            (folder.tmp / "a.txt").write_text("x")
            raise error
    assert not out.exists() and not partial_path(out).exists()


OPTIONS = RunOptions("test", {"--seed": 1, "--policy": "hflip"})


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt(), SystemExit(143)])
def test_a_resumable_output_keeps_its_unfinished_folder(tmp_path, error):
    out = tmp_path / "out"
    with pytest.raises(type(error)):
        with OutputFolder(out, inputs=[], resumable=True, options=OPTIONS) as folder:
            (folder.tmp / "a.txt").write_text("x")
            raise error
    assert not out.exists() and (partial_path(out) / "a.txt").is_file()
    with OutputFolder(out, inputs=[], resume=True, resumable=True, options=OPTIONS) as folder:
        assert folder.resumed and (folder.tmp / "a.txt").is_file()
    assert (out / "a.txt").is_file()


def test_bad_input_discards_even_a_resumable_output(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(UsageError):
        with OutputFolder(out, inputs=[], resumable=True, options=OPTIONS):
            raise UsageError("bad")
    assert not partial_path(out).exists()


def _interrupted(out, inputs=()):
    with pytest.raises(KeyboardInterrupt):
        with OutputFolder(out, inputs=list(inputs), resumable=True, options=OPTIONS):
            raise KeyboardInterrupt


@pytest.mark.parametrize("finished", [False, True])
def test_resume_refuses_other_options_naming_the_first(tmp_path, finished):
    out = tmp_path / "out"
    if finished:
        with OutputFolder(out, inputs=[], resumable=True, options=OPTIONS) as folder:
            folder.write_provenance("test")
    else:
        _interrupted(out)
    other = RunOptions("test", {"--seed": 2, "--policy": "vflip"})
    with pytest.raises(UsageError, match=r"with --seed 1, this run has --seed 2"):
        OutputFolder(out, inputs=[], resume=True, resumable=True, options=other)
    with pytest.raises(UsageError, match="made by `synthmed test`, not `synthmed other`"):
        OutputFolder(out, inputs=[], resume=True, resumable=True, options=RunOptions("other", OPTIONS.options))
    folder = OutputFolder(out, inputs=[], resume=True, resumable=True, options=OPTIONS)
    assert folder.finished == finished and folder.resumed == (not finished)


def test_resume_refuses_a_changed_input(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "dataset.json").write_text("{}")
    out = tmp_path / "out"
    _interrupted(out, [data])
    OutputFolder(out, inputs=[data], resume=True, resumable=True, options=OPTIONS).abandon(KeyboardInterrupt())
    (data / "dataset.json").write_text('{"changed": 1}')
    with pytest.raises(UsageError, match=f"input {data} has changed"):
        OutputFolder(out, inputs=[data], resume=True, resumable=True, options=OPTIONS)


@pytest.mark.parametrize("left", [[], ["options.json.tmp"]], ids=["empty", "half-written-record"])
def test_resume_of_a_folder_killed_before_its_options_were_recorded_starts_afresh(tmp_path, left):
    """Killed between creating the folder and renaming its options.json into place: nothing was
    done, so --resume starts over instead of refusing a folder with no record."""
    out = tmp_path / "out"
    partial_path(out).mkdir()
    for name in left:
        (partial_path(out) / name).write_text('{"comm')
    with OutputFolder(out, inputs=[], resume=True, resumable=True, options=OPTIONS) as folder:
        assert not folder.resumed and sorted(p.name for p in folder.tmp.iterdir()) == ["options.json"]
    assert (out / "options.json").is_file()


def test_resume_still_refuses_a_started_folder_with_no_record(tmp_path):
    out = tmp_path / "out"
    partial_path(out).mkdir()
    (partial_path(out) / "rows.jsonl").write_text("")
    with pytest.raises(UsageError, match="does not record the options"):
        OutputFolder(out, inputs=[], resume=True, resumable=True, options=OPTIONS)


def test_resume_refuses_an_output_started_with_the_earlier_png_writer(tmp_path):
    """Records from before the PNG writer was recorded were written by Pillow: continuing one
    would mix two writers' bytes (same pixels, other digests), so duplicates would go unseen."""
    import json

    out = tmp_path / "out"
    _interrupted(out)
    record_path = partial_path(out) / "options.json"
    record = json.loads(record_path.read_text())
    assert record["png_writer"] == "libspng-6"
    del record["png_writer"]
    record_path.write_text(json.dumps(record))
    with pytest.raises(UsageError, match=r"another PNG writer \(pillow-6\); run without --resume"):
        OutputFolder(out, inputs=[], resume=True, resumable=True, options=OPTIONS)


def test_resume_keeps_a_finished_output_of_the_earlier_png_writer(tmp_path):
    import json

    out = tmp_path / "out"
    with OutputFolder(out, inputs=[], resumable=True, options=OPTIONS) as folder:
        folder.write_provenance("test")
    record = json.loads((out / "options.json").read_text())
    del record["png_writer"]
    (out / "options.json").write_text(json.dumps(record))
    assert OutputFolder(out, inputs=[], resume=True, resumable=True, options=OPTIONS).finished

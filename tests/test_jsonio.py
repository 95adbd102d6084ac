"""Every JSON file the tool reads back goes through `read_json`: one-line errors naming the file."""

from __future__ import annotations

import json

import pytest

from synthmed.errors import DatasetError, UsageError
from synthmed.jsonio import read_json, write_json


def test_round_trip(tmp_path):
    write_json(tmp_path / "a.json", {"x": [1, 2]})
    assert (tmp_path / "a.json").read_text().endswith("\n")
    assert read_json(tmp_path / "a.json", what="a thing") == {"x": [1, 2]}


def test_missing_unreadable_and_not_an_object(tmp_path):
    with pytest.raises(UsageError, match=r"not a model folder \(no config.json\); fit one"):
        read_json(tmp_path / "config.json", what="a model folder", hint="fit one")
    (tmp_path / "config.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(DatasetError, match="config.json: not valid JSON"):
        read_json(tmp_path / "config.json", what="a model folder", error=DatasetError)
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(UsageError, match="config.json: expected a JSON object, found list"):
        read_json(tmp_path / "config.json", what="a model folder")


def test_a_config_that_is_not_an_object_is_a_one_line_error(run, sample_dataset, tmp_path):
    """Before: AttributeError (exit 1); now exit 2 naming the file."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(["not", "an", "object"]))
    out = tmp_path / "report"
    result = run("evaluate", model, sample_dataset, "-o", out)
    assert result.code == 2 and "config.json: expected a JSON object" in result.err
    assert len(result.err.strip().splitlines()) == 1 and not out.exists()


def test_a_manifest_that_is_not_an_object_is_a_one_line_error(run, tmp_path):
    streams = tmp_path / "streams"
    streams.mkdir()
    (streams / "streams.json").write_text("3")
    result = run("compress", "--decode", streams, "-o", tmp_path / "restored")
    assert result.code == 2 and "streams.json: expected a JSON object, found int" in result.err

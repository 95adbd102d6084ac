"""The shared option parsers: comma lists (names and numbers) and on/off environment variables."""

from __future__ import annotations

import pytest

from synthmed.errors import UsageError
from synthmed.parsing import comma_list, env_flag, number_list


def test_comma_lists_given_once_or_repeated():
    assert comma_list("a, b,,c") == ["a", "b", "c"]
    assert comma_list(["a,b", "c"]) == ["a", "b", "c"]
    assert comma_list(None) is None and comma_list(" , ") is None
    assert comma_list("a,b", option="--classes", distinct=True) == ["a", "b"]


@pytest.mark.parametrize("value", ["a,a", ",", ""])
def test_distinct_names_refuse_repeats_and_nothing(value):
    with pytest.raises(UsageError, match="--classes"):
        comma_list(value, option="--classes", distinct=True)


def test_number_lists():
    assert number_list("0.25, 0.5", "--alphas", example="0.25,0.5") == [0.25, 0.5]
    assert number_list(["50,75", "90"], "--quality", example="75", kind=int) == [50, 75, 90]
    assert number_list(None, "--quality", example="75") is None
    with pytest.raises(UsageError, match=r"--quality 'high': expected comma-separated numbers, for example 75"):
        number_list(["high"], "--quality", example="75", kind=int)


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("YES", True), (" On ", True), ("", False)])
def test_env_flag_accepts_the_usual_words(monkeypatch, value, expected):
    monkeypatch.setenv("SYNTHMED_TEST_FLAG", value)
    assert env_flag("SYNTHMED_TEST_FLAG") is expected


def test_env_flag_unset_is_off_and_anything_else_is_refused(monkeypatch):
    monkeypatch.delenv("SYNTHMED_TEST_FLAG", raising=False)
    assert env_flag("SYNTHMED_TEST_FLAG") is False
    for value in ("0", "maybe", "ture"):
        monkeypatch.setenv("SYNTHMED_TEST_FLAG", value)
        with pytest.raises(UsageError, match=f"SYNTHMED_TEST_FLAG='{value}'"):
            env_flag("SYNTHMED_TEST_FLAG")

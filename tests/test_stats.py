"""The one summary of repeated measurements."""

import math

from synthmed.stats import summarize


def test_median_quartiles_and_count():
    s = summarize([4.0, 1.0, 3.0, 2.0, 5.0])
    assert (s["median"], s["q1"], s["q3"], s["n"]) == (3.0, 2.0, 4.0, 5)
    assert s["values"] == [4.0, 1.0, 3.0, 2.0, 5.0]


def test_undefined_values_are_kept_but_not_counted():
    s = summarize([None, 1.0, math.nan, 3.0])
    assert s["n"] == 2 and s["median"] == 2.0 and len(s["values"]) == 4
    assert summarize([None])["median"] is None and summarize([])["n"] == 0


def test_nan_is_stored_as_none_so_reports_stay_valid_json():
    import json

    s = summarize([math.nan, 2.0])
    assert s["values"] == [None, 2.0] and s["n"] == 1
    json.loads(json.dumps(s, allow_nan=False))


def test_the_mean_only_when_asked():
    assert "mean" not in summarize([1.0, 2.0])
    assert summarize([1.0, 2.0, None], mean=True)["mean"] == 1.5
    assert summarize([None], mean=True)["mean"] is None

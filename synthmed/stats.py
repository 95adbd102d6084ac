"""The one summary of repeated measurements every report uses: median, quartiles, count, values."""

from __future__ import annotations

from typing import Any, Iterable


def summarize(values: Iterable[float | None]) -> dict[str, Any]:
    """{"median", "q1", "q3", "n", "values"} over the defined values (None entries are kept in
    `values` but not counted); medians and quartiles are None when nothing is defined."""
    import numpy as np

    values = [None if v is None else float(v) for v in values]
    defined = [v for v in values if v is not None and v == v]  # NaN counts as undefined
    if not defined:
        return {"median": None, "q1": None, "q3": None, "n": 0, "values": values}
    q1, median, q3 = np.percentile(defined, [25, 50, 75])
    return {"median": float(median), "q1": float(q1), "q3": float(q3), "n": len(defined), "values": values}

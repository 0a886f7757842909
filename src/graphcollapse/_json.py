"""JSON helpers shared by every ``to_json_dict`` (numpy only)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["json_floats"]


def json_floats(a: Any) -> Any:
    """Floats as plain JSON data: nested lists of the array's shape (a bare float for a
    scalar), with ``None`` for ``nan`` and ``inf``, which JSON cannot represent.

    >>> json_floats([1, float("nan"), float("inf")])
    [1.0, None, None]
    >>> json_floats([[0.5], [-np.inf]])
    [[0.5], [None]]
    >>> json_floats(np.float32(2.5)), json_floats(np.nan)
    (2.5, None)
    """
    arr = np.asarray(a, dtype=np.float64)
    out = arr.astype(object)
    out[~np.isfinite(arr)] = None
    return out.tolist()

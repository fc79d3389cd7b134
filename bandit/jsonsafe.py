"""JSON that every parser reads: non-finite numbers become ``null``.

Python's :func:`json.dumps` writes ``NaN``, ``Infinity`` and ``-Infinity`` by default, which
is not JSON (RFC 8259): strict parsers (``jq``, browsers' ``JSON.parse``, Go, Java) refuse the
whole document. Every JSON file or document the project writes (simulator ``summary.json``,
``--json`` outputs, bench results, log lines) goes through :func:`dumps`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (also numpy's, in arrays too) replaced by ``None``.

    Examples
    --------
    >>> finite({"a": float("nan"), "b": [1.5, float("-inf")], "c": np.float64("inf")})
    {'a': None, 'b': [1.5, None], 'c': None}
    >>> finite(np.array([1.0, np.nan])), finite((np.int64(3), "x"))
    ([1.0, None], [3, 'x'])
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.ndarray):
        return finite(value.tolist())
    if isinstance(value, np.generic):
        return finite(value.item())
    if isinstance(value, Mapping):
        return {
            (k if isinstance(k, str | int | bool) or k is None else str(k)): finite(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """:func:`json.dumps` of :func:`finite` ``(value)``; never writes ``NaN``/``Infinity``.

    Keyword arguments go to :func:`json.dumps` (``indent``, ``sort_keys``, ``default``...);
    what ``default`` returns is cleaned too.

    Examples
    --------
    >>> dumps({"rate": float("nan"), "n": 3}, sort_keys=True)
    '{"n": 3, "rate": null}'
    """
    default = kwargs.pop("default", None)

    def clean_default(obj: Any) -> Any:
        if default is None:
            msg = f"Object of type {type(obj).__name__} is not JSON serializable"
            raise TypeError(msg)
        return finite(default(obj))

    return json.dumps(finite(value), allow_nan=False, default=clean_default, **kwargs)

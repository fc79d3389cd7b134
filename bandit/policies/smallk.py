"""Plain-Python versions of the pmf arithmetic for small action sets, bit-identical to numpy.

Below about 64 actions a numpy call (about a microsecond each on small arrays) costs more than
the arithmetic, and a choice makes some twenty of them. These functions do the same IEEE
operations in the same order as :func:`~bandit.policies.base.apply_floor`,
:func:`~bandit.policies.vw_policy.squarecb_pmf` and
:func:`~bandit.policies.vw_policy.epsilon_greedy_pmf`: elementwise ``+ - * /`` round the same in
Python and numpy, ``numpy.cumsum`` adds left to right, and :func:`np_sum` reproduces numpy's
pairwise summation (8 accumulators, blocks of 128) that ``ndarray.sum`` uses, so the pmf, the
floor and the sampled action are the same to the last bit
(``tests/bandit/test_policy_smallk.py`` checks it against the numpy functions).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate

SMALL_K = 64
"""Largest action set the plain-Python path is used for (measured faster up to here)."""
_BLOCK = 128
_UNROLL = 8


def np_sum(values: Sequence[float]) -> float:
    """``float(np.asarray(values).sum())`` with numpy's pairwise summation order.

    Examples
    --------
    >>> np_sum([0.1] * 10) == float(__import__("numpy").full(10, 0.1).sum())
    True
    """
    return _pairwise(values, 0, len(values))


def _pairwise(a: Sequence[float], lo: int, n: int) -> float:
    if n < _UNROLL:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    if n <= _BLOCK:
        r0, r1, r2, r3, r4, r5, r6, r7 = a[lo : lo + _UNROLL]
        i = _UNROLL
        stop = n - n % _UNROLL
        while i < stop:
            b = lo + i
            r0 += a[b]
            r1 += a[b + 1]
            r2 += a[b + 2]
            r3 += a[b + 3]
            r4 += a[b + 4]
            r5 += a[b + 5]
            r6 += a[b + 6]
            r7 += a[b + 7]
            i += _UNROLL
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        for j in range(lo + i, lo + n):
            res += a[j]
        return res
    n2 = n // 2
    n2 -= n2 % _UNROLL
    return _pairwise(a, lo, n2) + _pairwise(a, lo + n2, n - n2)


def apply_floor_list(pmf: list[float], floor: float, weights: list[float] | None) -> list[float]:
    """:func:`~bandit.policies.base.apply_floor` on a list (same operations, same order)."""
    k = len(pmf)
    total = np_sum(pmf)
    if not math.isfinite(total) or total <= 0 or min(pmf) < 0:
        pmf = [1.0 / k] * k
    else:
        pmf = [p / total for p in pmf]
    keep = 1.0 - floor
    if weights is None:
        base = floor / k
        return [base + keep * p for p in pmf]
    wsum = np_sum(weights)
    return [floor * (w / wsum) + keep * p for w, p in zip(weights, pmf, strict=True)]


def squarecb_pmf_list(costs: list[float], gamma: float) -> list[float]:
    """:func:`~bandit.policies.vw_policy.squarecb_pmf` on a list of finite costs."""
    k = len(costs)
    best = costs.index(min(costs))  # the first minimum, as np.argmin
    low = costs[best]
    pmf = [1.0 / (k + gamma * (c - low)) for c in costs]
    pmf[best] = 0.0
    pmf[best] = max(1.0 - np_sum(pmf), 0.0)
    return pmf


def epsilon_greedy_pmf_list(costs: list[float], epsilon: float) -> list[float]:
    """:func:`~bandit.policies.vw_policy.epsilon_greedy_pmf` on a list of finite costs."""
    k = len(costs)
    low = min(costs)
    best = [c == low for c in costs]
    share = (1.0 - epsilon) / sum(best)
    base = epsilon / k
    return [base + share if b else base for b in best]


def sample_index(pmf: list[float], u: float) -> int:
    """The index ``np.searchsorted(np.cumsum(pmf), u * cdf[-1], side="right")`` picks."""
    cdf = list(accumulate(pmf))
    return min(bisect_right(cdf, u * cdf[-1]), len(pmf) - 1)


def all_finite(values: Sequence[float]) -> bool:
    """True when no value is NaN or infinite (the list path needs finite costs)."""
    return all(map(math.isfinite, values))

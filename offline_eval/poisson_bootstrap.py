"""The exact Poisson bootstrap: every round kept, an independent Poisson(1) weight per round and
resample, drawn in blocks with numpy.

Each resample weights round ``i`` by ``w_i ~ Poisson(1)`` (Hanley & MacGibbon 2006; Chamandy et
al. 2012, the bootstrap Google runs on logs too large to resample by index): a plain mean is
resampled as ``sum(w x) / sum(w)``, a self-normalised estimator as ``sum(w num) / sum(w den)``
(plus ``sum(w offset) / sum(w)``). Nothing is binned or merged; the only approximation is the
float32 product described below.

Drawing the weights fast. One random byte per (round, resample), taken from the generator's
raw 64-bit output, picks one of 256 equally likely cells of ``[0, 1)``; the weight is the
inverse Poisson(1) CDF of a uniform number in that cell. The bytes are relabelled so that the
251 cells lying inside one CDF step come first, sorted by their count: there the count is four
byte comparisons. The 5 cells that contain a CDF step (2 % of draws) are refined with a uniform
double from the same generator (``count = searchsorted(F, (cell + u) / 256)``), so the weights
are exactly Poisson(1) to double precision, as ``Generator.poisson`` is, at a fraction of its
cost (it spends about 85 ns per draw here; this about 2).

Summing. A block of weights (float32, integers up to 2^24 are exact) multiplies the centred
columns (float32) with BLAS, at most three columns per product (:data:`_GEMM_COLUMNS`); block
sums accumulate in float64. The float32 rounding of a
centred value is about 6e-8 of the column's spread, about 1e-7 of the resampled statistic's
standard deviation: far below the Monte Carlo error of any bootstrap.

Several estimators on the same rounds share one set of weights (:func:`resample_stats`), as
paired resampling should; the weights are drawn once for all of them.
"""

from __future__ import annotations

import math

import numpy as np

_ROW_BLOCK = 4096
_BOOT_BLOCK = 64
_GEMM_COLUMNS = 3
"""Columns per BLAS product: a 64 x 4,096 x 3 product stays on one OpenBLAS thread; wider ones
went multi-threaded, and waking the threads between small products cost ten times the
arithmetic on the 2 busy cores measured (34 ms instead of 3.6 ms per resample of 1M rounds)."""
_CELLS = 256


def _poisson_cdf() -> np.ndarray:
    terms = [math.exp(-1.0)]
    while True:
        cdf = np.cumsum(terms)
        if cdf[-1] >= 1.0 or len(terms) > 40:  # noqa: PLR2004
            capped: np.ndarray = np.minimum(cdf, 1.0)
            return capped
        terms.append(terms[-1] / len(terms))


_CDF = _poisson_cdf()


def _layout() -> tuple[np.ndarray, int, np.ndarray]:
    """Comparison thresholds of the pure cells, their number, and the impure cells' index."""
    cells = np.arange(_CELLS)
    low = np.searchsorted(_CDF, cells / _CELLS, side="right")
    high = np.searchsorted(_CDF, np.nextafter((cells + 1) / _CELLS, 0.0), side="right")
    pure = low == high
    counts = np.sort(low[pure])
    thresholds = np.asarray([np.searchsorted(counts, c) for c in range(1, int(counts[-1]) + 1)])
    return thresholds.astype(np.uint8), int(pure.sum()), cells[~pure]


_THRESHOLDS, _N_PURE, _IMPURE = _layout()


def poisson_weights(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A ``shape`` block of independent Poisson(1) weights (uint8), see the module docstring.

    Examples
    --------
    >>> w = poisson_weights(np.random.default_rng(0), (100, 1000))
    >>> round(float(w.mean()), 2), round(float(w.var()), 2)
    (1.0, 1.0)
    """
    size = shape[0] * shape[1]
    cell = rng.bit_generator.random_raw((size + 7) // 8).view(np.uint8)[:size]
    counts = np.greater_equal(cell, _THRESHOLDS[0]).view(np.uint8)
    step = np.empty(size, dtype=bool)
    for t in _THRESHOLDS[1:]:
        np.add(counts, np.greater_equal(cell, t, out=step).view(np.uint8), out=counts)
    refine = np.flatnonzero(np.greater_equal(cell, _N_PURE, out=step))
    if refine.size:
        base = _IMPURE[cell[refine] - _N_PURE]
        u = (base + rng.random(refine.size)) / _CELLS
        counts[refine] = np.searchsorted(_CDF, u, side="right")
    weights: np.ndarray = counts.reshape(shape)
    return weights


def resample_stats(columns: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """``sum(w * column)`` per resample for every column, and ``sum(w)`` last.

    Parameters
    ----------
    columns
        Shape ``(n_rounds, m)``.
    n_boot
        Resamples.
    seed
        Seed of the generator; the weights depend only on it and the shape.

    Returns
    -------
    np.ndarray
        Shape ``(n_boot, m + 1)``: the weighted sums of the columns and the sum of the weights.
    """
    n, m = columns.shape
    means = columns.mean(axis=0)
    centred = np.empty((n, m + 1), dtype=np.float32)
    centred[:, :m] = columns - means
    centred[:, m] = 1.0
    groups = [slice(g, min(g + _GEMM_COLUMNS, m + 1)) for g in range(0, m + 1, _GEMM_COLUMNS)]
    rng = np.random.default_rng(seed)
    out = np.zeros((n_boot, m + 1))
    weights = np.empty((_BOOT_BLOCK, _ROW_BLOCK), dtype=np.float32)
    for b0 in range(0, n_boot, _BOOT_BLOCK):
        b1 = min(b0 + _BOOT_BLOCK, n_boot)
        for r0 in range(0, n, _ROW_BLOCK):
            r1 = min(r0 + _ROW_BLOCK, n)
            block = weights[: b1 - b0, : r1 - r0]
            block[...] = poisson_weights(rng, (b1 - b0, r1 - r0))
            for cols in groups:
                out[b0:b1, cols] += block @ centred[r0:r1, cols]
    out[:, :m] += out[:, m : m + 1] * means  # sum(w x) = sum(w (x - mean)) + mean sum(w)
    return out

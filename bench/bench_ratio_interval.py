"""Which interval for the self-normalised estimators (SNIPS, SNDR): coverage per named target.

Same simulator logs, targets and truth as :mod:`bench.bench_ope_coverage`. For SNIPS and SNDR
every candidate of :mod:`offline_eval.ratio_interval` is computed on the same logs, all with the
``robust`` guards (the logger's variance floor, Student's t with the effective df):

* ``delta``: the delta-method interval (the ``robust`` default);
* ``fieller``: Fieller's interval (:func:`offline_eval.ratio_interval.robust_fieller_interval`);
* ``el``: profile empirical likelihood of the ratio's estimating equation;
* ``jackknife``: the delta interval with the jackknife (HC3-like) variance;
* ``boot_t``: the studentised Poisson bootstrap (999 resamples, shared by the pairs of a seed).

Coverage with a Wilson 95 % interval, mean width and the misses below/above the truth. The
decision it informed is in docs/decisions.md ("OPE intervals for low-ESS targets").
``NBI_COVERAGE_SEEDS`` sets the number of seeds (default 300; ``--quick``: 20).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

from bench.bench_ope_coverage import N_ROUNDS, TARGETS, _wilson, seed_logs

VARIANTS = ("delta", "fieller", "el", "jackknife", "boot_t")
Row = tuple[str, str, float, dict[str, tuple[float, float]]]


def _one_seed(seed: int) -> list[Row]:
    from scipy.stats import t as student_t

    from offline_eval import ratio_interval as ri
    from offline_eval.ci import analytic_interval, effective_df
    from offline_eval.evaluation import build_estimators

    split = seed_logs(seed)
    test = split.test
    estimators = [e for e in build_estimators(None, test) if e.name in ("snips", "sndr")]
    poisson = np.random.default_rng(seed).poisson(1.0, size=(999, test.n_rounds)).astype(float)
    out: list[Row] = []
    for target in TARGETS:
        probs, true_value = split.target(target)
        for est in estimators:
            rr = est.round_rewards(test, probs)
            v, n = rr.value(), rr.n
            infl = rr.influence()
            var = float(infl.var(ddof=1))
            floor = rr.variance_floor or 0.0
            scale = max(1.0, floor / var)
            q = float(student_t.ppf(0.975, max(effective_df(infl), 1.0)))
            delta = analytic_interval(rr, 0.05, robust=True)
            fieller = ri.robust_fieller_interval(rr, 0.05)
            se_jack = math.sqrt(max(ri.jackknife_variance(rr), floor) / n)
            se = math.sqrt(var * scale / n)
            t_lo, t_hi = ri.bootstrap_t_quantiles(rr, 0.05, weights=poisson)
            found = {
                "delta": (delta.ci_low, delta.ci_high),
                "fieller": (fieller.ci_low, fieller.ci_high),
                "el": ri.el_interval(rr, q, scale),
                "jackknife": (v - q * se_jack, v + q * se_jack),
                "boot_t": (v - t_hi * se, v - t_lo * se),
            }
            out.append((target, est.name, true_value, found))
    return out


def run(quick: bool = False) -> dict[str, object]:
    """Coverage and mean width per (target, estimator, variant); prints the table."""
    n_seeds = 20 if quick else int(os.environ.get("NBI_COVERAGE_SEEDS", "300"))
    rows: list[Row] = []
    with ProcessPoolExecutor(max_workers=2) as pool:
        for result in pool.map(_one_seed, range(n_seeds)):
            rows.extend(result)
    table: dict[str, dict[str, Any]] = {}
    print(f"\n{'target':30s} {'est':6s} " + " ".join(f"{v:>24s}" for v in VARIANTS))
    for target in TARGETS:
        for name in ("snips", "sndr"):
            sel = [r for r in rows if r[0] == target and r[1] == name]
            entry: dict[str, Any] = {}
            cells = []
            for variant in VARIANTS:
                lo = np.array([r[3][variant][0] for r in sel])
                hi = np.array([r[3][variant][1] for r in sel])
                t = np.array([r[2] for r in sel])
                hits = int(((lo <= t) & (t <= hi)).sum())
                w_lo, w_hi = _wilson(hits, len(sel))
                width = float(np.mean(hi - lo))
                entry[variant] = {
                    "coverage": hits / len(sel),
                    "wilson": [w_lo, w_hi],
                    "mean_width": width,
                    "below": int((t < lo).sum()),
                    "above": int((t > hi).sum()),
                }
                cells.append(f"{hits / len(sel):.3f} [{w_lo:.2f},{w_hi:.2f}] {width:.4f}")
            table[f"{target} / {name}"] = entry
            print(f"{target:30s} {name:6s} " + " ".join(f"{c:>24s}" for c in cells))
    return {"seeds": n_seeds, "rounds": N_ROUNDS, "table": table}


if __name__ == "__main__":
    run()

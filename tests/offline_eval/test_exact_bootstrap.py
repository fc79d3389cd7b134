"""The exact (Poisson, every round) bootstrap: its weights, its agreement with the analytic
interval, its determinism, and the binned mode it sits beside."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from bandit.errors import InvalidInputError
from offline_eval.ci import CIConfig, RoundRewards, interval, intervals
from offline_eval.poisson_bootstrap import poisson_weights, resample_stats

Z = NormalDist().inv_cdf(0.975)


def test_weights_are_poisson_one() -> None:
    """Frequencies of 0..5 within 5 binomial standard errors of Poisson(1), on 2^22 draws."""
    n = 64 * 65_536
    w = poisson_weights(np.random.default_rng(11), (64, 65_536)).ravel()
    for k in range(6):
        p = math.exp(-1.0) / math.factorial(k)
        assert abs(float(np.mean(w == k)) - p) < 5 * math.sqrt(p * (1 - p) / n), k
    assert abs(float(w.mean()) - 1.0) < 5 / math.sqrt(n)  # Poisson(1): variance 1
    assert int(w.max()) >= 7  # the refined tail cells are reached  # noqa: PLR2004


def test_resampled_sums_are_the_weighted_sums() -> None:
    """``sum(w x)`` and ``sum(w)`` of the same draws (one block of 3 resamples, 4,096-row
    tiles), within the worst-case float32 summation error ``eps32 * n * max|x - mean| *
    max(w)`` of the centred product (``sum(w)`` of small integers is exact)."""
    n = 10_000
    x = np.random.default_rng(1).normal(5.0, 2.0, size=(n, 2))
    sums = resample_stats(x, 3, seed=4)
    rng = np.random.default_rng(4)
    weights = np.concatenate(
        [poisson_weights(rng, (3, min(4096, n - r))) for r in range(0, n, 4096)], axis=1
    ).astype(float)
    expected = weights @ np.column_stack([x, np.ones(n)])
    bound = float(np.finfo(np.float32).eps) * n * float(np.abs(x - x.mean(axis=0)).max())
    np.testing.assert_allclose(sums, expected, rtol=0, atol=bound * float(weights.max()))
    np.testing.assert_array_equal(sums[:, -1], weights.sum(axis=1))


def _synthetic(n: int, seed: int) -> dict[str, RoundRewards]:
    """IPS-like terms: exponential importance weights, 0/1 rewards, a DM offset."""
    rng = np.random.default_rng(seed)
    w = rng.exponential(size=n)
    r = (rng.random(n) < 0.3).astype(float)
    dm = rng.uniform(0.2, 0.4, size=n)
    return {
        "mean": RoundRewards(w * r),
        "ratio": RoundRewards(w * r, w),
        "ratio_offset": RoundRewards(w * (r - 0.3), w, offset=dm),
    }


@pytest.mark.parametrize("kind", ["mean", "ratio", "ratio_offset"])
def test_exact_interval_agrees_with_the_analytic_one(kind: str) -> None:
    """Percentile endpoints within Monte Carlo + skewness tolerance of ``value +- z SE``.

    With B resamples the 2.5 % quantile's Monte Carlo standard deviation is
    ``sqrt(p (1 - p) / B) / phi(z)`` standard errors (0.042 SE at B = 4,000); four of those,
    plus the Cornish-Fisher shift of a percentile endpoint from the normal one,
    ``|skewness| (z^2 - 1) / (6 sqrt(n))`` SE, bound the difference. The Poisson bootstrap's
    variance of a mean is ``(n - 1) / n`` times the analytic one (negligible here).
    """
    n, n_boot = 20_000, 4_000
    rr = _synthetic(n, seed=7)[kind]
    analytic = interval(rr, CIConfig(method="analytic"))
    exact = interval(rr, CIConfig(method="bootstrap", resampling="exact", n_boot=n_boot, seed=3))
    se = analytic.extra["se"]
    infl = rr.influence()
    c = infl - infl.mean()
    skew = float((c**3).mean() / (c**2).mean() ** 1.5)
    mc = math.sqrt(0.025 * 0.975 / n_boot) / math.exp(-Z * Z / 2) * math.sqrt(2 * math.pi)
    tol = (4 * mc + abs(skew) * (Z * Z - 1) / (6 * math.sqrt(n))) * se
    assert exact.value == analytic.value
    assert exact.method == "bootstrap-exact"
    assert exact.extra["binning_loss"] == 0.0
    assert abs(exact.ci_low - analytic.ci_low) < tol
    assert abs(exact.ci_high - analytic.ci_high) < tol


def test_exact_is_deterministic_for_a_seed() -> None:
    rr = _synthetic(5_000, seed=1)["ratio_offset"]
    config = CIConfig(method="bootstrap", resampling="exact", n_boot=500, seed=9)
    assert interval(rr, config) == interval(rr, config)
    other = interval(rr, CIConfig(method="bootstrap", resampling="exact", n_boot=500, seed=10))
    assert other.ci_low != interval(rr, config).ci_low


def test_estimators_together_share_weights_and_keep_their_own_intervals() -> None:
    """``intervals`` bootstraps several estimators on one draw; each keeps its own value and
    an interval close to the one it gets alone (same weights, float32 products aside)."""
    terms = _synthetic(5_000, seed=2)
    config = CIConfig(method="bootstrap", resampling="exact", n_boot=500, seed=5)
    together = intervals(list(terms.values()), config, list(terms))
    for estimate, (name, rr) in zip(together, terms.items(), strict=True):
        alone = interval(rr, config, estimator=name)
        assert estimate.estimator == name
        assert estimate.value == alone.value
        se = interval(rr, CIConfig(method="analytic")).extra["se"]
        assert abs(estimate.ci_low - alone.ci_low) < 1e-4 * se
        assert abs(estimate.ci_high - alone.ci_high) < 1e-4 * se
    # other methods go estimator by estimator, unchanged
    robust = intervals(list(terms.values()), CIConfig(), list(terms))
    assert robust[0] == interval(terms["mean"], CIConfig(), estimator="mean")


def test_binned_mode_still_reports_its_binning_loss() -> None:
    rr = _synthetic(50_000, seed=4)["ratio_offset"]
    binned = interval(rr, CIConfig(method="bootstrap", n_boot=300, seed=1, max_atoms=256))
    assert binned.method == "bootstrap"
    assert 0.0 < binned.extra["binning_loss"] < 1e-2  # noqa: PLR2004
    assert binned.extra["n_atoms"] == 256  # noqa: PLR2004


def test_invalid_resampling_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match="resampling"):
        CIConfig(method="bootstrap", resampling="jackknife")  # type: ignore[arg-type]

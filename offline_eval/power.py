"""Power planning: the one minimum-detectable-effect (MDE) convention of nbi.

Every MDE in nbi (``nbi power``, ``nbi experiment``, the simulator's trial summary) comes from
:func:`mde`::

    MDE = (z_{1-alpha/2} + z_{power}) * sqrt(sigma^2 (1/n_t + 1/n_c) * deff * (1 - R^2))

two-sided ``alpha``, normal quantiles, ``sigma^2 = p (1 - p)`` for a 0/1 outcome at the baseline
(control-arm) rate ``p`` and ``sigma^2 = SD^2`` for a continuous outcome. ``deff`` is the design
effect of cluster randomisation (:func:`design_effect`, 1 for per-citizen randomisation) and
``R^2`` the share of outcome variance explained by pre-treatment covariates in the adjusted
analysis (Lin's estimator). With ``alpha = 0.05`` and 80 % power the factor is 2.8016
(shared/domain.md 3.2 rounds it to 2.80).

For planning, ``n`` citizens enter per period (week or month) and a share ``control_share`` of
them is in the control arm; :func:`plan_mde` gives the MDE after a duration and
:func:`plan_duration` the duration that reaches a target MDE. When the number of clusters is
fixed (say 12 job centres) the clusters grow with the duration and so does the design effect;
the MDE then has a floor that no duration can beat (:func:`plan_duration` says so).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

from bandit.errors import InvalidInputError

Period = Literal["week", "month"]
MIN_PER_ARM = 2
"""Fewest citizens per arm a planned trial may have (a variance needs two)."""


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise InvalidInputError(message)


def _finite(value: float) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def z_sum(alpha: float = 0.05, power: float = 0.8) -> float:
    """``z_{1-alpha/2} + z_{power}`` (two-sided test), e.g. 2.8016 for 0.05 and 0.8.

    Examples
    --------
    >>> round(z_sum(0.05, 0.8), 4)
    2.8016
    """
    from scipy.stats import norm

    _check(_finite(alpha) and 0.0 < alpha < 1.0, f"Expected 0 < alpha < 1, got {alpha}")
    _check(_finite(power) and 0.0 < power < 1.0, f"Expected 0 < power < 1, got {power}")
    _check(
        power > alpha,
        f"Expected a power above alpha (alpha < power < 1), got power {power:g} with alpha "
        f"{alpha:g}: a two-sided level-{alpha:g} test already rejects with probability {alpha:g} "
        "when there is no effect",
    )
    return float(norm.ppf(1.0 - alpha / 2.0) + norm.ppf(power))


def outcome_variance(*, baseline_rate: float | None = None, sd: float | None = None) -> float:
    """``sigma^2``: ``p (1 - p)`` for a 0/1 outcome, ``SD^2`` for a continuous one.

    Give exactly one of ``baseline_rate`` (0 < p < 1) and ``sd`` (> 0).

    Examples
    --------
    >>> outcome_variance(baseline_rate=0.6), outcome_variance(sd=2.0)
    (0.24, 4.0)
    """
    _check(
        (baseline_rate is None) != (sd is None),
        "Give exactly one of a baseline rate (0/1 outcome) or an SD (continuous outcome)",
    )
    if baseline_rate is not None:
        _check(
            _finite(baseline_rate) and 0.0 < baseline_rate < 1.0,
            f"Expected a baseline rate strictly between 0 and 1, got {baseline_rate}",
        )
        return baseline_rate * (1.0 - baseline_rate)
    assert sd is not None  # noqa: S101 (narrowing; checked above)
    _check(_finite(sd) and sd > 0.0, f"Expected an outcome SD > 0, got {sd}")
    return sd * sd


def design_effect(icc: float, mean_cluster_size: float, cv: float = 0.0) -> float:
    """Variance inflation of cluster randomisation.

    ``1 + ((1 + CV^2) m - 1) ICC`` (Eldridge, Ashby and Kerry 2006, Int J Epidemiol 35:1292),
    with ``m`` the mean cluster size and ``CV`` the coefficient of variation of the cluster
    sizes (SD / mean). With equal sizes (``CV = 0``) it is the familiar ``1 + (m - 1) ICC``.

    Examples
    --------
    >>> design_effect(0.02, 51), round(design_effect(0.02, 51, cv=0.5), 4)
    (2.0, 2.255)
    """
    _check(_finite(icc) and 0.0 <= icc <= 1.0, f"Expected 0 <= ICC <= 1, got {icc}")
    _check(
        _finite(mean_cluster_size) and mean_cluster_size >= 1.0,
        f"Expected a mean cluster size >= 1, got {mean_cluster_size}",
    )
    _check(_finite(cv) and cv >= 0.0, f"Expected a cluster-size CV >= 0, got {cv}")
    return 1.0 + ((1.0 + cv * cv) * mean_cluster_size - 1.0) * icc


def mde(
    variance: float,
    n_treatment: float,
    n_control: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    deff: float = 1.0,
    r_squared: float = 0.0,
) -> float:
    """The minimum detectable difference in means (the single convention of nbi).

    Parameters
    ----------
    variance
        Outcome variance ``sigma^2`` (:func:`outcome_variance`).
    n_treatment, n_control
        Citizens per arm (may be fractional when planned from an inflow).
    alpha, power
        Two-sided level and power.
    deff
        Design effect (:func:`design_effect`; 1 for per-citizen randomisation).
    r_squared
        Share of the outcome variance explained by the adjustment covariates (0 <= R^2 < 1).

    Examples
    --------
    >>> round(100 * mde(0.24, 14400, 3600), 2)  # domain.md 3.2: dagpenge 6 months, 20 % control
    2.56
    """
    _check(
        _finite(variance) and variance > 0.0, f"Expected an outcome variance > 0, got {variance}"
    )
    _check(
        _finite(n_treatment) and _finite(n_control) and n_treatment > 0 and n_control > 0,
        f"Expected citizens in both arms, got {n_treatment} treated and {n_control} control",
    )
    _check(_finite(deff) and deff > 0.0, f"Expected a design effect > 0, got {deff}")
    _check(_finite(r_squared) and 0.0 <= r_squared < 1.0, f"Expected 0 <= R^2 < 1, got {r_squared}")
    factor = variance * (1.0 / n_treatment + 1.0 / n_control) * deff * (1.0 - r_squared)
    return z_sum(alpha, power) * math.sqrt(factor)


@dataclass(frozen=True)
class PowerPlan:
    """Inputs and result of one power calculation (``nbi power``)."""

    outcome: Literal["binary", "continuous"]
    baseline_rate: float | None
    sd: float | None
    control_share: float
    inflow: float
    per: Period
    duration: float
    n_total: float
    n_treatment: float
    n_control: float
    icc: float
    mean_cluster_size: float
    n_clusters: float | None
    cluster_cv: float
    design_effect: float
    r_squared: float
    alpha: float
    power: float
    mde: float
    mde_floor: float | None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class Design:
    """What stays fixed while the duration varies.

    Parameters
    ----------
    control_share
        Share of citizens (or clusters) in the control arm, 0 < share < 1.
    inflow, per
        Citizens entering per ``per`` (``"week"`` or ``"month"``).
    baseline_rate, sd
        Exactly one: the control-arm rate of a 0/1 outcome, or the SD of a continuous one.
    icc
        Intra-cluster correlation of the outcome (0 for per-citizen randomisation).
    cluster_size, n_clusters
        At most one: a fixed mean cluster size ``m``, or a fixed number of clusters ``G``
        (then ``m = n / G`` grows with the duration). Neither: ``m = 1`` (no clustering).
    cluster_cv
        Coefficient of variation of the cluster sizes (0 = equal sizes).
    r_squared, alpha, power
        Adjustment R^2, two-sided level, power.
    """

    control_share: float
    inflow: float
    per: Period = "week"
    baseline_rate: float | None = None
    sd: float | None = None
    icc: float = 0.0
    cluster_size: float | None = None
    n_clusters: float | None = None
    cluster_cv: float = 0.0
    r_squared: float = 0.0
    alpha: float = 0.05
    power: float = 0.8

    def __post_init__(self) -> None:
        share = self.control_share
        _check(_finite(share) and 0.0 < share < 1.0, f"Expected 0 < control share < 1, got {share}")
        _check(_finite(self.inflow) and self.inflow > 0, f"Expected inflow > 0, got {self.inflow}")
        _check(self.per in ("week", "month"), f"Expected per week or month, got {self.per!r}")
        _check(
            self.cluster_size is None or self.n_clusters is None,
            "Give a mean cluster size or a number of clusters, not both",
        )
        if self.n_clusters is not None:
            _check(
                _finite(self.n_clusters) and self.n_clusters >= 2,  # noqa: PLR2004
                f"Expected at least 2 clusters, got {self.n_clusters}",
            )
        if self.icc > 0 and self.cluster_size is None and self.n_clusters is None:
            msg = "An ICC needs a mean cluster size or a number of clusters"
            raise InvalidInputError(msg)
        outcome_variance(baseline_rate=self.baseline_rate, sd=self.sd)
        design_effect(self.icc, self.cluster_size or 1.0, self.cluster_cv)
        mde(1.0, 1, 1, alpha=self.alpha, power=self.power, r_squared=self.r_squared)

    @property
    def variance(self) -> float:
        """Outcome variance ``sigma^2``."""
        return outcome_variance(baseline_rate=self.baseline_rate, sd=self.sd)

    def cluster_size_at(self, n_total: float) -> float:
        """Mean cluster size when ``n_total`` citizens have entered."""
        if self.n_clusters is not None:
            return max(1.0, n_total / self.n_clusters)
        return self.cluster_size if self.cluster_size is not None else 1.0

    def deff_at(self, n_total: float) -> float:
        """Design effect when ``n_total`` citizens have entered."""
        return design_effect(self.icc, self.cluster_size_at(n_total), self.cluster_cv)

    def mde_at(self, n_total: float) -> float:
        """MDE with ``n_total`` citizens split by the control share."""
        n_c = n_total * self.control_share
        return mde(
            self.variance,
            n_total - n_c,
            n_c,
            alpha=self.alpha,
            power=self.power,
            deff=self.deff_at(n_total),
            r_squared=self.r_squared,
        )

    def mde_floor(self) -> float | None:
        """The MDE as the duration grows without bound (fixed number of clusters), else None.

        With ``G`` clusters and ``m = n / G``, ``deff / n -> (1 + CV^2) ICC / G``.
        """
        if self.n_clusters is None or self.icc == 0:
            return None
        s = self.control_share
        limit = (1 + self.cluster_cv**2) * self.icc / self.n_clusters
        factor = self.variance * (1 / (1 - s) + 1 / s) * limit * (1 - self.r_squared)
        return z_sum(self.alpha, self.power) * math.sqrt(factor)

    def largest_effect(self) -> float:
        """The largest difference the outcome can show: ``max(p, 1 - p)`` for a 0/1 outcome at
        the baseline rate ``p`` (the rate ``p +- MDE`` must stay inside (0, 1) in at least one
        direction), unbounded for a continuous one."""
        p = self.baseline_rate
        return math.inf if p is None else max(p, 1.0 - p)

    def plan(self, duration: float) -> PowerPlan:
        """The full result for a duration (in periods).

        Raises when either arm gets fewer than :data:`MIN_PER_ARM` citizens, and, for a 0/1
        outcome, when the MDE is beyond :meth:`largest_effect` (the trial is too small for any
        effect the outcome can have).
        """
        n_total = self.inflow * duration
        n_c = n_total * self.control_share
        _check(
            _finite(n_total) and min(n_c, n_total - n_c) >= MIN_PER_ARM,
            f"The design has {n_total - n_c:.3g} citizens in treatment and {n_c:.3g} in control "
            f"(inflow x duration, split by the control share); a trial needs at least "
            f"{MIN_PER_ARM} per arm",
        )
        mde_n = self.mde_at(n_total)
        _check(
            mde_n < self.largest_effect(),
            f"With {n_total:.3g} citizens the MDE would be {mde_n:.3g}, more than a 0/1 outcome "
            f"at baseline rate {self.baseline_rate} can move (p +- MDE must stay inside (0, 1)): "
            "the trial is too small; raise the inflow or the duration",
        )
        return PowerPlan(
            outcome="binary" if self.baseline_rate is not None else "continuous",
            baseline_rate=self.baseline_rate,
            sd=self.sd,
            control_share=self.control_share,
            inflow=self.inflow,
            per=self.per,
            duration=duration,
            n_total=n_total,
            n_treatment=n_total * (1 - self.control_share),
            n_control=n_total * self.control_share,
            icc=self.icc,
            mean_cluster_size=self.cluster_size_at(n_total),
            n_clusters=self.n_clusters,
            cluster_cv=self.cluster_cv,
            design_effect=self.deff_at(n_total),
            r_squared=self.r_squared,
            alpha=self.alpha,
            power=self.power,
            mde=mde_n,
            mde_floor=self.mde_floor(),
        )


def plan_mde(design: Design, duration: float) -> PowerPlan:
    """The MDE after ``duration`` periods of inflow.

    Examples
    --------
    >>> d = Design(control_share=0.2, inflow=18_000 / 26, baseline_rate=0.6)
    >>> round(100 * plan_mde(d, 26).mde, 2)
    2.56
    """
    _check(_finite(duration) and duration > 0, f"Expected a duration > 0, got {duration}")
    return design.plan(duration)


def plan_duration(design: Design, target_mde: float) -> PowerPlan:
    """The duration (in periods, fractional) whose MDE equals ``target_mde``.

    Solves ``n = K (1 + (c n - 1) ICC) / MDE^2`` for ``n`` in closed form, where
    ``K = z^2 sigma^2 (1/(1-s) + 1/s)(1 - R^2)`` and ``c = (1 + CV^2) / G`` when the number of
    clusters ``G`` is fixed (``c = 0`` with a fixed cluster size). Raises when ``G`` clusters
    cannot reach the target at any duration.

    Examples
    --------
    >>> d = Design(control_share=0.2, inflow=1000, baseline_rate=0.6)
    >>> p = plan_duration(d, 0.02)
    >>> round(p.n_total), round(100 * p.mde, 6)
    (29433, 2.0)
    """
    _check(_finite(target_mde) and target_mde > 0, f"Expected a target MDE > 0, got {target_mde}")
    _check(
        target_mde < design.largest_effect(),
        f"A target MDE of {target_mde:g} is impossible for a 0/1 outcome at baseline rate "
        f"{design.baseline_rate}: the rate p +- MDE must stay inside (0, 1) in at least one "
        f"direction, so the MDE must be below {design.largest_effect():g}",
    )
    s = design.control_share
    k = (
        z_sum(design.alpha, design.power) ** 2
        * design.variance
        * (1 / (1 - s) + 1 / s)
        * (1 - design.r_squared)
    )
    a = k / target_mde**2
    if design.n_clusters is None:
        n_total = a * design.deff_at(1.0)  # a fixed cluster size: deff does not depend on n
    else:
        c = (1 + design.cluster_cv**2) / design.n_clusters
        floor = design.mde_floor()
        if floor is not None and target_mde <= floor:
            msg = (
                f"A target MDE of {target_mde:g} cannot be reached with {design.n_clusters:g} "
                f"clusters at ICC {design.icc:g}: the MDE never falls below {floor:.4g}; "
                "randomise more clusters"
            )
            raise InvalidInputError(msg)
        n_total = a * (1 - design.icc) / (1 - a * c * design.icc)
        if n_total < design.n_clusters:  # clusters of fewer than one citizen: m = 1
            n_total = a * design.deff_at(design.n_clusters)
    return design.plan(n_total / design.inflow)

"""Cost-benefit of one offer for one citizen: benefit days saved and net value in DKK.

The learner estimates ``P(job within H)`` per offer with a 95 % interval
(:meth:`bandit.policies.base.Policy.estimates`). Benefit days need the *timing* of the exit,
which a probability alone does not give; the documented approximation (docs/cost_benefit.md):

* **Constant hazard within the horizon.** A probability ``p`` of a job within ``H`` weeks
  corresponds to a constant weekly exit rate ``lambda = -ln(1 - p) / H``; the expected weeks on
  benefit within the horizon are then ``W(p) = integral_0^H exp(-lambda t) dt = p H / -ln(1 - p)``
  (``W(0) = H``, ``W(1) = 0``, decreasing in ``p``).
* **Benefit days saved** versus the no-programme baseline (standard contact, probability
  ``p0``): ``D = 5 (W(p0) - W(p))`` (5 benefit days a week, domain.md 5.3). Only days within
  the horizon count, so the figure is conservative: the saving beyond week ``H`` of a job found
  earlier is left out. Lock-in is in ``p`` (the model learns the offer's outcome) but its
  timing is not: for long programmes the constant hazard puts exits earlier than they happen.
* **Net value** ``N = D * rate - cost`` with the daily benefit ``rate`` of the citizen's target
  group and the offer's programme cost (:attr:`bandit.catalog.Intervention.programme_cost_dkk`).
* **Interval.** ``W`` is monotone, so the offer's interval ``[p_low, p_high]`` maps exactly to
  ``[D(p_low), D(p_high)]`` and ``[N(p_low), N(p_high)]``; the baseline enters at its point
  estimate (the same model scores both, so their errors are largely shared; adding the
  baseline's own width would double-count it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bandit.catalog import Catalog, Family
from bandit.rewards import BENEFIT_DAYS_PER_WEEK
from bandit.types import Action, Features

if TYPE_CHECKING:
    from bandit.policies.base import Policy, RewardEstimate

_P_MAX = 1.0 - 1e-12


def expected_benefit_weeks(p_job: float, horizon_weeks: float) -> float:
    """Expected weeks on benefit within the horizon for ``P(job within H) = p_job`` under a
    constant hazard: ``p H / -ln(1 - p)``.

    Examples
    --------
    >>> expected_benefit_weeks(0.0, 26), expected_benefit_weeks(1.0, 26)
    (26.0, 0.0)
    >>> round(expected_benefit_weeks(0.5, 26), 4)  # 0.5 * 26 / ln 2
    18.7549
    """
    if not math.isfinite(p_job) or not math.isfinite(horizon_weeks) or horizon_weeks <= 0:
        msg = f"Expected a finite probability and a positive horizon, got {p_job}, {horizon_weeks}"
        raise ValueError(msg)
    p = min(max(p_job, 0.0), 1.0)
    if p <= 1e-12:  # noqa: PLR2004 (the limit p -> 0)
        return float(horizon_weeks)
    if p >= _P_MAX:
        return 0.0
    return p * horizon_weeks / -math.log1p(-p)


@dataclass(frozen=True, slots=True)
class CostBenefit:
    """Expected benefit days saved and net value in DKK, each with a 95 % interval."""

    benefit_days_saved: float
    benefit_days_saved_low: float
    benefit_days_saved_high: float
    net_value_dkk: float
    net_value_dkk_low: float
    net_value_dkk_high: float
    programme_cost_dkk: float


def benefit_days_saved(p_job: float, p_baseline: float, horizon_weeks: float) -> float:
    """``5 (W(p_baseline) - W(p_job))``: benefit days within the horizon saved versus the
    baseline (negative when the offer does worse than the baseline)."""
    return BENEFIT_DAYS_PER_WEEK * (
        expected_benefit_weeks(p_baseline, horizon_weeks)
        - expected_benefit_weeks(p_job, horizon_weeks)
    )


def cost_benefit(
    p_job: float,
    p_low: float,
    p_high: float,
    *,
    p_baseline: float,
    horizon_weeks: float,
    daily_rate_dkk: float,
    programme_cost_dkk: float,
) -> CostBenefit:
    """Benefit days saved and net value of one offer versus the no-programme baseline.

    Parameters
    ----------
    p_job, p_low, p_high
        The offer's estimated ``P(job within H)`` and its 95 % interval.
    p_baseline
        The same model's estimate for the baseline (standard contact) for the same citizen.
    horizon_weeks
        ``H``.
    daily_rate_dkk
        Benefit per day for the citizen's target group (360 dagpenge, 320 kontanthjælp).
    programme_cost_dkk
        The offer's cost per participant.

    Examples
    --------
    >>> cb = cost_benefit(0.5, 0.4, 0.6, p_baseline=0.4, horizon_weeks=26,
    ...                   daily_rate_dkk=360, programme_cost_dkk=1000)
    >>> round(cb.benefit_days_saved, 2), round(cb.net_value_dkk), cb.benefit_days_saved_low
    (8.02, 1887, 0.0)
    """
    mid = benefit_days_saved(p_job, p_baseline, horizon_weeks)
    low = benefit_days_saved(min(p_low, p_job), p_baseline, horizon_weeks)
    high = benefit_days_saved(max(p_high, p_job), p_baseline, horizon_weeks)
    return CostBenefit(
        benefit_days_saved=mid,
        benefit_days_saved_low=low,
        benefit_days_saved_high=high,
        net_value_dkk=mid * daily_rate_dkk - programme_cost_dkk,
        net_value_dkk_low=low * daily_rate_dkk - programme_cost_dkk,
        net_value_dkk_high=high * daily_rate_dkk - programme_cost_dkk,
        programme_cost_dkk=programme_cost_dkk,
    )


def baseline_action_id(catalog: Catalog) -> str | None:
    """The no-programme baseline of ``catalog``: its first standard-contact offer, if any."""
    return next((item.id for item in catalog if item.family is Family.STANDARD_CONTACT), None)


def option_costs(
    policy: Policy,
    catalog: Catalog,
    context: Features,
    actions: Sequence[Action],
    estimates: Sequence[RewardEstimate],
    *,
    horizon_weeks: float,
    daily_rate_dkk: float,
    baseline_raw: float | None = None,
) -> list[CostBenefit | None]:
    """:func:`cost_benefit` of each shown option (``None`` for all when the catalog has no
    standard-contact baseline or the baseline's estimate is not finite; ``None`` for an offer
    not in the catalog). The caller holds any lock the policy needs.

    ``baseline_raw``: the model's raw expected reward of the baseline offer for ``context``
    when the caller has it (e.g. the equity gate's need score of the same decision), so the
    model is not asked again (:meth:`~bandit.policies.base.Policy.estimates` with ``raw``)."""
    base_id = baseline_action_id(catalog)
    if base_id is None:
        return [None] * len(actions)
    raw = None if baseline_raw is None else [baseline_raw]
    p0 = policy.estimates(context, [catalog.action(base_id)], raw=raw)[0].mean
    if not math.isfinite(p0):
        return [None] * len(actions)
    out: list[CostBenefit | None] = []
    for action, est in zip(actions, estimates, strict=True):
        if not catalog.has(action.id):
            out.append(None)
            continue
        out.append(
            cost_benefit(
                est.mean,
                est.low,
                est.high,
                p_baseline=p0,
                horizon_weeks=horizon_weeks,
                daily_rate_dkk=daily_rate_dkk,
                programme_cost_dkk=catalog.get(action.id).programme_cost_dkk,
            )
        )
    return out

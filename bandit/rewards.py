"""Outcomes and the rewards derived from them (higher is better, everywhere).

An :class:`Outcome` says what happened after a decision: a job after ``weeks_to_job`` weeks,
still unemployed at the horizon, or a dropout (moved, sick, ...) after ``weeks_observed`` weeks;
or, set by the service's horizon sweep, nothing reported by the horizon (``not_reported``: no
job as far as anyone knows, reward 0, until a late real report corrects it).
A dropout before any job and before the horizon is *censored*: its reward is unknown, and
reward functions return ``RewardValue(value=None, censored=True)`` instead of a silent zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Protocol

from bandit.context import TargetGroup
from bandit.errors import InvalidInputError
from bandit.types import Decision

DEFAULT_HORIZON_WEEKS = 26
BENEFIT_DKK_PER_DAY = {TargetGroup.DAGPENGE: 360.0, TargetGroup.KONTANTHJAELP: 320.0}
BENEFIT_DAYS_PER_WEEK = 5


class OutcomeStatus(StrEnum):
    """What is known about the spell after the decision."""

    EMPLOYED = "employed"
    UNEMPLOYED_AT_HORIZON = "unemployed_at_horizon"
    DROPOUT = "dropout"
    NOT_REPORTED = "not_reported"
    """Set by the horizon sweep when nothing was reported by the horizon: provisionally no job
    (the register assumption), but a later real report replaces it as an audited correction."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """Employment outcome of one decision event.

    Parameters
    ----------
    status
        See :class:`OutcomeStatus`.
    weeks_to_job
        Weeks from the decision to an ordinary job (required for ``employed``).
    weeks_observed
        Weeks followed before a dropout (required for ``dropout``).
    """

    status: OutcomeStatus
    weeks_to_job: float | None = None
    weeks_observed: float | None = None

    def __post_init__(self) -> None:
        if self.status is OutcomeStatus.EMPLOYED:
            if self.weeks_to_job is None or not 0 <= self.weeks_to_job < 1e4:  # noqa: PLR2004
                msg = "An `employed` outcome needs weeks_to_job >= 0"
                raise InvalidInputError(msg)
        elif self.weeks_to_job is not None:
            msg = f"weeks_to_job is only allowed for `employed`, not `{self.status.value}`"
            raise InvalidInputError(msg)
        if self.status is OutcomeStatus.DROPOUT and (
            self.weeks_observed is None or not 0 <= self.weeks_observed < 1e4  # noqa: PLR2004
        ):
            msg = "A `dropout` outcome needs weeks_observed >= 0"
            raise InvalidInputError(msg)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the decision record and the learner's snapshot use it)."""
        return {
            "status": self.status.value,
            "weeks_to_job": self.weeks_to_job,
            "weeks_observed": self.weeks_observed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Outcome:
        """Inverse of :meth:`to_dict` (validated like any outcome)."""
        return cls(
            OutcomeStatus(data["status"]), data.get("weeks_to_job"), data.get("weeks_observed")
        )


@dataclass(frozen=True, slots=True)
class RewardValue:
    """A reward, or the statement that it is censored (unknown)."""

    value: float | None
    censored: bool = False


class RewardFunction(Protocol):
    """Maps an outcome to a reward (higher is better)."""

    def __call__(self, outcome: Outcome) -> RewardValue:
        """Return the reward of ``outcome``."""


def _job_within(outcome: Outcome, horizon: float) -> bool | None:
    """True/False when known, ``None`` when censored before the horizon."""
    if outcome.status is OutcomeStatus.EMPLOYED:
        assert outcome.weeks_to_job is not None  # noqa: S101 (checked in __post_init__)
        return outcome.weeks_to_job <= horizon
    if outcome.status in (OutcomeStatus.UNEMPLOYED_AT_HORIZON, OutcomeStatus.NOT_REPORTED):
        return False
    assert outcome.weeks_observed is not None  # noqa: S101
    return False if outcome.weeks_observed >= horizon else None


@dataclass(frozen=True, slots=True)
class EmployedWithinHorizon:
    """Reward 1 if an ordinary job started within ``horizon_weeks``, else 0 (the RCT outcome).

    Examples
    --------
    >>> r = EmployedWithinHorizon(26)
    >>> r(Outcome(OutcomeStatus.EMPLOYED, weeks_to_job=10)).value
    1.0
    >>> r(Outcome(OutcomeStatus.DROPOUT, weeks_observed=5))
    RewardValue(value=None, censored=True)
    """

    horizon_weeks: float = DEFAULT_HORIZON_WEEKS

    def __call__(self, outcome: Outcome) -> RewardValue:
        """Return the reward of ``outcome``."""
        known = _job_within(outcome, self.horizon_weeks)
        return RewardValue(None, censored=True) if known is None else RewardValue(float(known))


@dataclass(frozen=True, slots=True)
class WeeksToEmployment:
    """Share of the horizon spent employed: ``(H - min(weeks_to_job, H)) / H`` in [0, 1]."""

    horizon_weeks: float = DEFAULT_HORIZON_WEEKS

    def __call__(self, outcome: Outcome) -> RewardValue:
        """Return the reward of ``outcome``."""
        known = _job_within(outcome, self.horizon_weeks)
        if known is None:
            return RewardValue(None, censored=True)
        if not known:
            return RewardValue(0.0)
        assert outcome.weeks_to_job is not None  # noqa: S101
        return RewardValue((self.horizon_weeks - outcome.weeks_to_job) / self.horizon_weeks)


@dataclass(frozen=True, slots=True)
class BenefitCostSaved:
    """Benefit DKK saved within the horizon versus staying on benefit the whole horizon."""

    target_group: TargetGroup
    horizon_weeks: float = DEFAULT_HORIZON_WEEKS

    def __call__(self, outcome: Outcome) -> RewardValue:
        """Return the reward of ``outcome`` in DKK."""
        share = WeeksToEmployment(self.horizon_weeks)(outcome)
        if share.value is None:
            return share
        weekly = BENEFIT_DKK_PER_DAY[self.target_group] * BENEFIT_DAYS_PER_WEEK
        return RewardValue(share.value * self.horizon_weeks * weekly)


@dataclass(frozen=True, slots=True)
class NetSavings:
    """Optional reward (off by default): net public savings of the decision, scaled.

    ``(benefit DKK saved within the horizon - the offer's programme cost) / scale_dkk``, where
    the benefit saved is :class:`WeeksToEmployment`'s employed share of the horizon times the
    horizon's benefit at the citizen's daily rate (``target_group`` in the decision's context)
    and the cost is ``costs[action id]`` (0 when absent). ``scale_dkk`` (default: 26 weeks of
    dagpenge, 46,800 DKK) keeps the reward near [-1, 1] for the learner. It needs the decision,
    so :class:`~bandit.feedback.FeedbackLearner` passes it (``uses_decision``); the learner's
    estimates are then scaled net savings, not employment chances, and the hazard strategy
    (which learns job hazards) refuses it. See docs/cost_benefit.md.

    Examples
    --------
    >>> r = NetSavings({"M1": 4000.0}, horizon_weeks=26)
    >>> from bandit.types import Action, Decision
    >>> d = Decision(event_id="e", context={"target_group": "dagpenge"},
    ...              actions=(Action("M1", {}),), pmf=(1.0,), chosen=0, propensity=1.0,
    ...              expected_rewards=(0.0,), model_version="v", policy="p")
    >>> r(Outcome(OutcomeStatus.EMPLOYED, weeks_to_job=13), d).value  # (23400 - 4000) / 46800
    0.4145299145299145
    """

    costs: Mapping[str, float]
    horizon_weeks: float = DEFAULT_HORIZON_WEEKS
    benefit_dkk_per_day: Mapping[str, float] | None = None
    scale_dkk: float = 360.0 * BENEFIT_DAYS_PER_WEEK * DEFAULT_HORIZON_WEEKS
    uses_decision: ClassVar[bool] = True

    def __call__(self, outcome: Outcome, decision: Decision | None = None) -> RewardValue:
        """Return the scaled net savings of ``outcome`` for ``decision`` (required)."""
        if decision is None:
            msg = "NetSavings needs the decision (its offer's cost and the citizen's target group)"
            raise InvalidInputError(msg)
        share = WeeksToEmployment(self.horizon_weeks)(outcome)
        if share.value is None:
            return share
        group = TargetGroup(str(decision.context.get("target_group", TargetGroup.DAGPENGE)))
        rates = self.benefit_dkk_per_day or {}
        daily = float(rates.get(group.value, BENEFIT_DKK_PER_DAY[group]))
        saved = share.value * self.horizon_weeks * BENEFIT_DAYS_PER_WEEK * daily
        cost = float(self.costs.get(decision.chosen_action.id, 0.0))
        return RewardValue((saved - cost) / self.scale_dkk)


def reward_of(reward: RewardFunction, outcome: Outcome, decision: Decision | None) -> RewardValue:
    """``reward(outcome)``, with the decision for a reward that ``uses_decision``."""
    if getattr(reward, "uses_decision", False):
        return reward(outcome, decision)  # type: ignore[call-arg]
    return reward(outcome)

"""Learning from delayed, censored outcomes: when each piece of feedback reaches the policy.

A job found in week 3 after the decision is known in week 3 (plus the reporting lag); "no job
within ``H`` weeks" is known only at week ``H``. Feeding rewards to the learner as they are
settled therefore shows it the successes of an offer it has just started recommending weeks
before the failures, and it overrates that offer until the horizon catches up. The strategies:

* ``at_once`` (a): learn the reward when the outcome is reported (the biased baseline).
* ``horizon`` (b): learn every outcome at ``decision + H + lag``, when failures are known too.
  Unbiased, but every update waits the full horizon.
* ``hazard`` (c): a discrete-time hazard learner. Every week a citizen is known to be still
  without a job is one observation (``job=False``), the week a job starts one event
  (``job=True``); the policy's expected reward is ``P(job within H) = 1 - prod_t (1 - h_t)``.
  Unbiased (each citizen-week is learned once its outcome is known, whatever it is) and it uses
  partial information as it arrives. Needs a policy with ``learns_hazard``
  (:class:`bandit.policies.vw_policy.VWPolicy` with ``target="hazard"``).

Only events whose caseworker followed the recommendation are learned, with the logged (served)
propensity: the recommendation is what was randomised given the case, so its outcome is an
unconfounded sample of that offer's reward for that context; a caseworker's own choice may
depend on what the caseworker saw and the model did not (see ``docs/decisions.md``).

An outcome ``not_reported`` (the service's horizon sweep: nothing was reported by the
horizon) is provisional under every strategy: it is learned as "no job" only at
``decision + H + lag``, when a real report would be overdue; a real report that arrives before
then replaces it and is learned instead, once. A report later than that cannot be learned
without learning the event twice; the service stores it as an audited correction only.

Time is in seconds (service) or in weeks times :data:`WEEK_SECONDS` (simulator); the same
:class:`FeedbackLearner` runs in both. Its open events are part of its state
(:meth:`FeedbackLearner.state`) so the service's learner can snapshot them with the model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, cast, runtime_checkable

from bandit.errors import InvalidInputError
from bandit.policies.base import Policy
from bandit.rewards import (
    EmployedWithinHorizon,
    Outcome,
    OutcomeStatus,
    RewardFunction,
    reward_of,
)
from bandit.types import Action, Decision, Features

WEEK_SECONDS = 7 * 24 * 3600.0


class DelayStrategy(StrEnum):
    """How delayed outcomes reach the learner (see the module docstring)."""

    AT_ONCE = "at_once"
    HORIZON = "horizon"
    HAZARD = "hazard"


DEFAULT_STRATEGY = DelayStrategy.HAZARD


def default_delay(policy: Policy) -> DelayStrategy:
    """``hazard`` for hazard learners, else ``horizon`` (unbiased).

    Examples
    --------
    >>> from bandit.policies import make_policy
    >>> default_delay(make_policy("uniform")).value
    'horizon'
    """
    return (
        DelayStrategy.HAZARD if getattr(policy, "learns_hazard", False) else DelayStrategy.HORIZON
    )


def resolve_delay(requested: DelayStrategy | str | None, policy: Policy) -> DelayStrategy:
    """The strategy to run: ``requested``, except ``hazard`` for a policy that is not a hazard
    learner (a baseline or a reward model) runs ``horizon``, the unbiased alternative."""
    if requested is None or DelayStrategy(requested) is DelayStrategy.HAZARD:
        return default_delay(policy)
    return DelayStrategy(requested)


@runtime_checkable
class HazardLearner(Protocol):
    """A policy that learns citizen-weeks at risk."""

    learns_hazard: bool

    def learn_at_risk(self, context: Features, action: Action, week: int, *, job: bool) -> None:
        """Learn one citizen-week."""


@dataclass(slots=True)
class OpenEvent:
    """A followed recommendation whose feedback is not complete yet.

    ``weeks_learned``: citizen-weeks already learned (hazard strategy); ``outcome``: reported
    outcome waiting for its release time (horizon strategy).
    """

    event_id: str
    timestamp: float
    decision: Decision | None
    weeks_learned: int = 0
    outcome: Outcome | None = None
    predicted: float | None = None


DecisionResolver = Callable[[str], Decision | None]
"""Looks a decision up by event id (the service reads the store); ``None`` when unknown."""


def _unreported(event: OpenEvent) -> bool:
    return event.outcome is not None and event.outcome.status is OutcomeStatus.NOT_REPORTED


class FeedbackLearner:
    """Feeds one policy from followed recommendations and their outcomes, per strategy.

    Parameters
    ----------
    policy
        The learner. For ``hazard`` it must satisfy :class:`HazardLearner`.
    strategy
        :class:`DelayStrategy`.
    horizon_weeks
        Reward horizon ``H``.
    lag_weeks
        Reporting lag: a job in week ``t`` is known by ``t + 1 + lag`` weeks after the decision
        and "no job in week ``t``" is assumed only then. Set it to at least the real lag.
    reward
        Outcome -> reward (default: employed within the horizon).
    resolve
        Rebuilds a decision from its event id when the learner holds only the id (after a
        restart from a snapshot).

    Examples
    --------
    >>> from bandit.policies import make_policy
    >>> from bandit.types import Action
    >>> acts = [Action("a", {"family": "mentor"}), Action("b", {"family": "standard_contact"})]
    >>> policy = make_policy("vw", target="hazard", horizon_weeks=4, hazard_buckets=(0,), seed=1)
    >>> feed = FeedbackLearner(policy, DelayStrategy.HAZARD, horizon_weeks=4)
    >>> d = policy.choose({}, acts, event_id="e1")
    >>> feed.on_followed(d, timestamp=0.0)
    >>> feed.advance(2 * WEEK_SECONDS)  # weeks 0 and 1 known without a job
    2
    >>> feed.on_outcome("e1", Outcome(OutcomeStatus.EMPLOYED, weeks_to_job=2.5), 3 * WEEK_SECONDS)
    1
    >>> feed.open_count, policy.n_updates
    (0, 3)
    """

    def __init__(
        self,
        policy: Policy,
        strategy: DelayStrategy | str = DEFAULT_STRATEGY,
        *,
        horizon_weeks: int = 26,
        lag_weeks: float = 0.0,
        reward: RewardFunction | None = None,
        resolve: DecisionResolver | None = None,
    ) -> None:
        self.strategy = DelayStrategy(strategy)
        if self.strategy is DelayStrategy.HAZARD and not getattr(policy, "learns_hazard", False):
            msg = (
                f"Delay strategy 'hazard' needs a hazard learner; policy {policy.name!r} is not "
                "one (use policy 'vw' with target='hazard', or strategy 'horizon')"
            )
            raise InvalidInputError(msg)
        if horizon_weeks < 1 or lag_weeks < 0 or not math.isfinite(lag_weeks):
            msg = "Expected horizon_weeks >= 1 and a finite lag_weeks >= 0"
            raise InvalidInputError(msg)
        self.policy = policy
        self.horizon_weeks = horizon_weeks
        self.lag_weeks = lag_weeks
        if self.strategy is DelayStrategy.HAZARD and getattr(reward, "uses_decision", False):
            msg = "Delay strategy 'hazard' learns job hazards; a net-savings reward needs 'horizon'"
            raise InvalidInputError(msg)
        self.reward = reward or EmployedWithinHorizon(horizon_weeks)
        self.resolve = resolve
        self._open: dict[str, OpenEvent] = {}

    # ------------------------------------------------------------------ inputs

    def on_followed(self, decision: Decision, *, timestamp: float) -> None:
        """A caseworker followed the recommendation of ``decision`` made at ``timestamp``."""
        if decision.event_id not in self._open:
            shown = float(decision.expected_rewards[decision.chosen])
            predicted = shown if math.isfinite(shown) else None
            self._open[decision.event_id] = OpenEvent(
                decision.event_id, timestamp, decision, predicted=predicted
            )

    def on_outcome(self, event_id: str, outcome: Outcome, now: float) -> int:
        """The outcome of an event was reported at ``now``; return the updates made.

        Events that were never followed (unknown here) are ignored.
        """
        event = self._open.get(event_id)
        if event is None:
            return 0
        if outcome.status is OutcomeStatus.NOT_REPORTED:
            event.outcome = outcome  # provisional: final at decision + H + lag
            return self._release_unreported(event, now)
        if self.strategy is DelayStrategy.AT_ONCE:
            return self._learn_reward(event, outcome)
        if self.strategy is DelayStrategy.HORIZON:
            event.outcome = outcome
            return self._release_due(event, now)
        return self._learn_hazard_outcome(event, outcome)

    def advance(self, now: float) -> int:
        """Learn whatever became known by ``now``; return the number of updates."""
        updates = 0
        for event in list(self._open.values()):
            if _unreported(event):
                updates += self._release_unreported(event, now)
            elif self.strategy is DelayStrategy.HORIZON:
                updates += self._release_due(event, now)
            elif self.strategy is DelayStrategy.HAZARD:
                updates += self._learn_known_weeks(event, now)
        return updates

    def is_open(self, event_id: str) -> bool:
        """Whether ``event_id`` is followed and its feedback not complete (a real report
        would still be learned)."""
        return event_id in self._open

    # ------------------------------------------------------------------ state

    @property
    def open_count(self) -> int:
        """Followed events whose feedback is not complete."""
        return len(self._open)

    def state(self) -> dict[str, Any]:
        """JSON-ready open events (ids, times, progress; decisions are re-read on load)."""
        return {
            "strategy": self.strategy.value,
            "open": {
                e.event_id: [
                    e.timestamp,
                    e.weeks_learned,
                    None if e.outcome is None else e.outcome.to_dict(),
                ]
                for e in self._open.values()
            },
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state` (decisions are resolved lazily through ``resolve``)."""
        if state.get("strategy", self.strategy.value) != self.strategy.value:
            msg = (
                f"The snapshot's learner used delay strategy {state.get('strategy')!r}, "
                f"the settings say {self.strategy.value!r}"
            )
            raise InvalidInputError(msg)
        self._open = {}
        for event_id, (timestamp, weeks, outcome) in dict(state.get("open", {})).items():
            self._open[event_id] = OpenEvent(
                event_id,
                float(timestamp),
                None,
                int(weeks),
                None if outcome is None else Outcome.from_dict(outcome),
            )

    # ------------------------------------------------------------------ internals

    def _decision(self, event: OpenEvent) -> Decision | None:
        if event.decision is None and self.resolve is not None:
            event.decision = self.resolve(event.event_id)
        return event.decision

    def _elapsed_weeks(self, event: OpenEvent, now: float) -> float:
        return (now - event.timestamp) / WEEK_SECONDS

    def _learn_reward(self, event: OpenEvent, outcome: Outcome) -> int:
        self._open.pop(event.event_id, None)
        decision = self._decision(event)
        value = reward_of(self.reward, outcome, decision)
        if value.value is None or decision is None:
            return 0
        self.policy.learn(decision, value.value, propensity=decision.propensity)
        return 1

    def _release_unreported(self, event: OpenEvent, now: float) -> int:
        """A provisional ``not_reported``: weeks known so far (hazard), then, once a real report
        is overdue (``H + lag``), "no job" like any other settled failure."""
        assert event.outcome is not None  # noqa: S101 (only called for unreported events)
        updates = 0
        if self.strategy is DelayStrategy.HAZARD:
            updates += self._learn_known_weeks(event, now)
        if self._elapsed_weeks(event, now) < self.horizon_weeks + self.lag_weeks:
            return updates
        if self.strategy is DelayStrategy.HAZARD:
            return updates + self._learn_hazard_outcome(event, event.outcome)
        return updates + self._learn_reward(event, event.outcome)

    def _release_due(self, event: OpenEvent, now: float) -> int:
        if event.outcome is None:
            return 0
        if self._elapsed_weeks(event, now) < self.horizon_weeks + self.lag_weeks:
            return 0
        return self._learn_reward(event, event.outcome)

    def _learn_known_weeks(self, event: OpenEvent, now: float) -> int:
        """Hazard: learn the weeks known to be without a job (no outcome reported yet)."""
        known = math.floor(self._elapsed_weeks(event, now) - self.lag_weeks + 1e-9)
        return self._learn_weeks(event, min(known, self.horizon_weeks), job_week=None)

    def _learn_hazard_outcome(self, event: OpenEvent, outcome: Outcome) -> int:
        decision = self._decision(event)
        value = reward_of(self.reward, outcome, decision)
        if decision is not None and value.value is not None and self.policy.tracks_errors:
            # the model's estimate at decision time (else now, before it learns how this ended)
            predicted = event.predicted
            if predicted is None:
                predicted = self.policy.estimate_of(decision.context, decision.chosen_action)
            family = str(decision.chosen_action.features.get("family", ""))
            self.policy.track_error(predicted, value.value, family=family)
        job_week: int | None = None
        until = self.horizon_weeks
        if outcome.status is OutcomeStatus.EMPLOYED:
            assert outcome.weeks_to_job is not None  # noqa: S101 (validated by Outcome)
            if math.floor(outcome.weeks_to_job) < self.horizon_weeks:
                job_week = until = math.floor(outcome.weeks_to_job)
        elif outcome.status is OutcomeStatus.DROPOUT:  # right-censored after the weeks observed
            assert outcome.weeks_observed is not None  # noqa: S101
            until = min(math.floor(outcome.weeks_observed), self.horizon_weeks)
        updates = self._learn_weeks(event, until, job_week=job_week)
        self._open.pop(event.event_id, None)
        if value.value is not None and decision is not None:
            self.policy.observe_outcome(decision.chosen_action, value.value)
        return updates

    def _learn_weeks(self, event: OpenEvent, until: int, *, job_week: int | None) -> int:
        """Learn weeks ``weeks_learned .. until-1`` without a job, then the job week if any."""
        decision = self._decision(event)
        if decision is None:
            self._open.pop(event.event_id, None)
            return 0
        # checked in __init__; a runtime_checkable isinstance here cost about 20 us a call
        policy = cast("HazardLearner", self.policy)
        action = decision.chosen_action
        updates = 0
        start = event.weeks_learned
        for week in range(start, until):
            policy.learn_at_risk(decision.context, action, week, job=False)
            updates += 1
        event.weeks_learned = max(start, until)
        # A job in a week already learned as "no job" (a report later than ``lag_weeks``)
        # cannot be unlearned; it is skipped rather than counted twice.
        if job_week is not None and job_week >= start:
            policy.learn_at_risk(decision.context, action, job_week, job=True)
            event.weeks_learned = job_week + 1
            updates += 1
        return updates

"""The optional net-savings reward, injected into the feedback loop (off by default)."""

from __future__ import annotations

from typing import Any

import pytest

from bandit.catalog import default_catalog
from bandit.errors import InvalidInputError
from bandit.feedback import WEEK_SECONDS, DelayStrategy, FeedbackLearner
from bandit.policies.uniform import UniformPolicy
from bandit.rewards import EmployedWithinHorizon, NetSavings, Outcome, OutcomeStatus
from bandit.types import Decision


class SpyPolicy(UniformPolicy):
    """The uniform policy, recording the rewards it is taught."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.taught: list[float] = []

    def learn(self, decision: Decision, reward: float, **kwargs: Any) -> None:
        self.taught.append(reward)
        super().learn(decision, reward, **kwargs)


def test_net_savings_reach_the_learner_as_computed_by_hand() -> None:
    catalog = default_catalog()
    mentor = next(i for i in catalog if i.family.value == "mentor")
    costs = {i.id: i.programme_cost_dkk for i in catalog}
    policy = SpyPolicy(seed=1)
    feed = FeedbackLearner(
        policy, DelayStrategy.HORIZON, horizon_weeks=26, reward=NetSavings(costs, 26)
    )
    decision = policy.choose({"target_group": "kontanthjaelp"}, [mentor.as_action()], event_id="e1")
    feed.on_followed(decision, timestamp=0.0)
    feed.on_outcome("e1", Outcome(OutcomeStatus.EMPLOYED, weeks_to_job=6.0), now=7 * WEEK_SECONDS)
    assert feed.advance(26 * WEEK_SECONDS) == 1
    # by hand: employed after 6 of 26 weeks -> 20 weeks x 5 days x 320 DKK = 32,000 DKK saved,
    # minus the mentor's cost (1,000 DKK a week x its length), over 26 x 5 x 360 = 46,800 DKK
    expected = (20 * 5 * 320 - 1000.0 * mentor.length_weeks) / 46_800
    assert policy.taught == [pytest.approx(expected, rel=1e-12)]


def test_net_savings_is_off_by_default_and_refused_by_the_hazard_strategy() -> None:
    policy = UniformPolicy(seed=1)
    assert isinstance(FeedbackLearner(policy, "horizon").reward, EmployedWithinHorizon)
    with pytest.raises(InvalidInputError, match="needs the decision"):
        NetSavings({})(Outcome(OutcomeStatus.UNEMPLOYED_AT_HORIZON))
    from bandit.policies.vw_policy import VWPolicy

    with pytest.raises(InvalidInputError, match="net-savings"):
        FeedbackLearner(VWPolicy(target="hazard"), "hazard", reward=NetSavings({}))

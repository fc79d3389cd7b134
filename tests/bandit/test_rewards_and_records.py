from __future__ import annotations

import pytest

from bandit.context import TargetGroup
from bandit.control import Group
from bandit.errors import InvalidInputError
from bandit.records import DecisionRecord
from bandit.rewards import (
    BenefitCostSaved,
    EmployedWithinHorizon,
    Outcome,
    OutcomeStatus,
    RewardValue,
    WeeksToEmployment,
)

EMPLOYED_10 = Outcome(OutcomeStatus.EMPLOYED, weeks_to_job=10)
EMPLOYED_30 = Outcome(OutcomeStatus.EMPLOYED, weeks_to_job=30)
NO_JOB = Outcome(OutcomeStatus.UNEMPLOYED_AT_HORIZON)
DROP_EARLY = Outcome(OutcomeStatus.DROPOUT, weeks_observed=5)
DROP_LATE = Outcome(OutcomeStatus.DROPOUT, weeks_observed=27)


def test_employed_within_horizon() -> None:
    r = EmployedWithinHorizon(26)
    assert r(EMPLOYED_10) == RewardValue(1.0)
    assert r(EMPLOYED_30) == RewardValue(0.0)
    assert r(NO_JOB) == RewardValue(0.0)
    assert r(DROP_EARLY) == RewardValue(None, censored=True)
    assert r(DROP_LATE) == RewardValue(0.0)


def test_weeks_and_cost_rewards() -> None:
    assert WeeksToEmployment(26)(EMPLOYED_10).value == pytest.approx(16 / 26)
    assert WeeksToEmployment(26)(NO_JOB).value == 0.0
    saved = BenefitCostSaved(TargetGroup.DAGPENGE, 26)(EMPLOYED_10).value
    assert saved == pytest.approx(16 * 5 * 360)
    kh = BenefitCostSaved(TargetGroup.KONTANTHJAELP, 26)(EMPLOYED_10).value
    assert kh == pytest.approx(16 * 5 * 320)
    assert BenefitCostSaved(TargetGroup.DAGPENGE)(DROP_EARLY).censored


def test_invalid_outcomes() -> None:
    with pytest.raises(InvalidInputError, match="weeks_to_job"):
        Outcome(OutcomeStatus.EMPLOYED)
    with pytest.raises(InvalidInputError, match="only allowed for `employed`"):
        Outcome(OutcomeStatus.UNEMPLOYED_AT_HORIZON, weeks_to_job=3)
    with pytest.raises(InvalidInputError, match="weeks_observed"):
        Outcome(OutcomeStatus.DROPOUT)


def test_record_round_trip() -> None:
    rec = DecisionRecord(
        event_id="e1",
        timestamp=1.5,
        citizen_key="p_" + "0" * 64,
        group=Group.TREATMENT,
        context={"age": 30},
        eligible=("A", "B"),
        pmf=(0.3, 0.7),
        recommended="B",
        propensity=0.7,
        model_version="v",
        policy="uniform",
        excluded={"C": "age"},
    )
    done = rec.with_assignment("A", "citizen_preference").with_outcome(
        EMPLOYED_10, 1.0, censored=False
    )
    assert done.complied is False
    assert DecisionRecord.from_dict(done.to_dict()) == done
    with pytest.raises(InvalidInputError, match="Malformed decision record"):
        DecisionRecord.from_dict({"event_id": "x"})
    bad = rec.to_dict() | {"pmf": [0.5, 0.2]}
    with pytest.raises(InvalidInputError, match="sum to 1"):
        DecisionRecord.from_dict(bad)

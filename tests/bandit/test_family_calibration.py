"""Per-family residual correction of the ranking scores (``VWPolicy(family_calibration=...)``).

The residuals are hand-computed: 40 recommendations of family A predicted at 0.5 with 10
successes (mean residual +0.25), 20 of family B predicted at 0.5 with 15 successes (-0.25);
over all 60 the mean residual is (40 * 0.25 - 20 * 0.25) / 60 = 1/12.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bandit.errors import InvalidInputError
from bandit.feedback import WEEK_SECONDS, DelayStrategy, FeedbackLearner
from bandit.policies.vw_policy import VWPolicy
from bandit.rewards import Outcome, OutcomeStatus
from bandit.types import Action
from tests.helpers.contexts import citizen

ACTIONS = [
    Action("a1", {"family": "private_internship", "sector": "retail"}),
    Action("a2", {"family": "private_internship", "sector": "it"}),
    Action("b1", {"family": "individual_meeting"}),
]


def _track(policy: VWPolicy) -> None:
    for i in range(40):
        policy.track_error(0.5, 1.0 if i < 10 else 0.0, family="private_internship")
    for i in range(20):
        policy.track_error(0.5, 1.0 if i < 15 else 0.0, family="individual_meeting")


def test_family_residual_is_the_shrunk_excess_over_the_overall_residual() -> None:
    policy = VWPolicy(seed=1)
    _track(policy)
    assert policy.model_bias() == pytest.approx(1.0 / 12.0, abs=1e-12)
    assert policy.family_residual("private_internship", 10.0) == pytest.approx(
        40.0 / 50.0 * (0.25 - 1.0 / 12.0), abs=1e-12
    )
    assert policy.family_residual("individual_meeting", 0.0) == pytest.approx(
        -0.25 - 1.0 / 12.0, abs=1e-12
    )
    assert policy.family_residual("mentor", 10.0) == 0.0  # no evidence: no correction


def _trained(**params: float) -> VWPolicy:
    """A policy that has learned 60 rounds, half of them successes, for every offer (SquareCB's
    gamma grows with the learning steps; untrained, the pmf is uniform whatever the scores)."""
    policy = VWPolicy(seed=1, **params)
    context = citizen().features()
    for i in range(60):
        d = policy.choose(context, ACTIONS, event_id=f"t{i}")
        policy.learn(d, float(i % 2 == 0), action_index=i % 3, propensity=d.pmf[i % 3])
    return policy


def test_calibration_moves_mass_from_the_overrated_family_and_is_off_by_default() -> None:
    context = citizen().features()
    calibrated, plain = _trained(family_calibration=10.0), _trained()
    _track(calibrated)
    _track(plain)
    assert calibrated.family_residual("individual_meeting", 10.0) < -0.1
    shifted = calibrated.probabilities(context, ACTIONS)
    unshifted = plain.probabilities(context, ACTIONS)
    assert shifted[2] > unshifted[2]  # the under-predicted family gains
    assert shifted[:2].sum() < 0.5 * unshifted[:2].sum()  # the over-predicted one loses
    assert math.isclose(float(shifted.sum()), 1.0, rel_tol=1e-12)
    assert min(shifted) >= calibrated.floor / (2 * 2) - 1e-12  # exploration share kept
    # the shown estimates are not corrected per family
    assert np.array_equal(
        calibrated.estimates_of(context, ACTIONS), plain.estimates_of(context, ACTIONS)
    )
    d = calibrated.choose(context, ACTIONS, event_id="e1")  # choose serves the same pmf
    assert np.allclose(d.pmf, shifted, atol=1e-12)


def test_residuals_survive_a_snapshot_and_the_option_is_validated() -> None:
    policy = VWPolicy(seed=1, family_calibration=10.0)
    _track(policy)
    restored = VWPolicy.from_bytes(policy.to_bytes())
    for family in ("private_internship", "individual_meeting"):
        assert restored.family_residual(family, 10.0) == policy.family_residual(family, 10.0)
    assert restored.get_params()["family_calibration"] == 10.0
    assert "family_calibration" not in VWPolicy(seed=1).get_params()  # old versions kept
    with pytest.raises(InvalidInputError, match="family_calibration"):
        VWPolicy(family_calibration=-1.0)


def test_the_feedback_loop_tracks_the_residual_under_the_offers_family() -> None:
    policy = VWPolicy(target="hazard", horizon_weeks=4, hazard_buckets=(0,), seed=3)
    feed = FeedbackLearner(policy, DelayStrategy.HAZARD, horizon_weeks=4)
    d = policy.choose(citizen().features(), ACTIONS[2:], event_id="e1")
    shown = d.expected_rewards[0]
    feed.on_followed(d, timestamp=0.0)
    feed.on_outcome("e1", Outcome(OutcomeStatus.EMPLOYED, weeks_to_job=1.5), 2 * WEEK_SECONDS)
    # one tracked outcome (below MIN_TRACKED, so no overall bias): the family's own residual
    assert policy.family_residual("individual_meeting", 0.0) == pytest.approx(shown - 1.0)
    assert policy.family_residual("private_internship", 0.0) == 0.0

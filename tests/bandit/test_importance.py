"""Permutation importance on a real VW policy fitted to a small simulated log."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bandit.errors import InvalidInputError
from bandit.importance import (
    ImportanceReport,
    Round,
    feature_groups,
    permutation_importance,
)
from bandit.policies import make_policy
from bandit.policies.vw_policy import VWPolicy
from bandit.types import Action

ACTIONS = (
    Action("a", {"family": "mentor"}),
    Action("b", {"family": "education"}),
    Action("c", {"family": "wage_subsidy"}),
)


def _truth(context: dict[str, float]) -> np.ndarray:
    """P(job) per offer: ``driver`` decides between a and b (0.1 to 0.9), ``weak`` moves c by
    0.3 at most, ``noise`` does nothing."""
    d, w = context["driver"], context["weak"]
    return np.array([0.1 + 0.8 * d, 0.9 - 0.8 * d, 0.4 + 0.3 * w])


def _fitted(n: int = 2000) -> tuple[VWPolicy, list[Round]]:
    """A VW policy learned from a uniformly logged simulation; the log as rounds."""
    rng = np.random.default_rng(0)
    policy = VWPolicy(seed=0, learning_rate=0.5, optimism=0.0)
    rounds = []
    for i in range(n):
        ctx = {"driver": float(rng.random()), "noise": float(rng.random())}
        ctx["weak"] = float(rng.random())
        k = int(rng.integers(3))
        reward = float(rng.random() < _truth(ctx)[k])
        decision = policy.choose(ctx, ACTIONS, event_id=f"e{i}")
        policy.learn(decision, reward, action_index=k, propensity=1 / 3)
        rounds.append(Round(ctx, ACTIONS, k))
    return policy, rounds[-300:]


@pytest.fixture(scope="module")
def fitted() -> tuple[VWPolicy, list[Round]]:
    return _fitted()


def test_the_feature_that_drives_reward_ranks_first_and_noise_last(
    fitted: tuple[VWPolicy, list[Round]],
) -> None:
    policy, rounds = fitted
    result = permutation_importance(policy, rounds, repeats=5, seed=1)
    assert [f.feature for f in result] == ["driver", "weak", "noise"]
    driver, weak, noise = result
    # Separated by many spreads, not by luck of one permutation: the gap between neighbours
    # exceeds 5 standard deviations (over the repeats) of either.
    for hi, lo in ((driver, weak), (weak, noise)):
        gap = hi.reward_change - lo.reward_change
        assert gap > 5 * max(hi.reward_change_sd, lo.reward_change_sd)
    # The policy's choice follows the driver: its top offer changes for a large share of the
    # decisions when the driver is shuffled (truth: a above b iff driver > 0.5, so a shuffled
    # driver crosses 0.5 half the time), and rarely for noise.
    assert driver.top_change > 0.3 > 0.1 > noise.top_change
    assert driver.pmf_change > weak.pmf_change > noise.pmf_change
    assert all(f.present == 1.0 for f in result)


def test_numbers_are_deterministic_for_a_seed_and_per_feature(
    fitted: tuple[VWPolicy, list[Round]],
) -> None:
    policy, rounds = fitted
    first = permutation_importance(policy, rounds, repeats=3, seed=11)
    assert permutation_importance(policy, rounds, repeats=3, seed=11) == first
    other = permutation_importance(policy, rounds, repeats=3, seed=12)
    assert [f.reward_change for f in other] != [f.reward_change for f in first]
    # A feature's numbers do not depend on which other features are measured.
    alone = permutation_importance(policy, rounds, repeats=3, seed=11, groups={"noise": ("noise",)})
    assert alone == [f for f in first if f.feature == "noise"]
    # A policy is only asked: the model is unchanged by the measurement.
    assert policy.n_updates == 2000


def test_feature_that_the_model_ignores_has_zero_importance() -> None:
    """A uniform policy reads no feature: every change is exactly zero."""
    rounds = [Round({"x": float(i), "flag": i % 2 == 0}, ACTIONS, i % 3) for i in range(20)]
    result = permutation_importance(make_policy("uniform"), rounds, repeats=2, seed=0)
    assert {f.feature for f in result} == {"x", "flag"}
    assert all(f.reward_change == f.pmf_change == f.top_change == 0.0 for f in result)


def test_groups_absent_values_and_validation() -> None:
    rounds = [
        Round({"age": 30, "cv_sql": 1.0}, ACTIONS, 0),
        Round({"age": 40, "cv_welding": 1.0}, ACTIONS, 1),
    ]
    assert feature_groups(rounds) == {"age": ("age",), "cv_tokens": ("cv_sql", "cv_welding")}
    result = permutation_importance(VWPolicy(seed=0), rounds, repeats=1, seed=0)
    assert {f.feature for f in result} == {"age", "cv_tokens"}
    assert all(math.isnan(f.reward_change_sd) for f in result)  # one repeat: no spread
    with pytest.raises(InvalidInputError, match="at least 2"):
        permutation_importance(VWPolicy(seed=0), rounds[:1])
    with pytest.raises(InvalidInputError, match="repeats"):
        permutation_importance(VWPolicy(seed=0), rounds, repeats=0)
    with pytest.raises(InvalidInputError, match="out of range"):
        permutation_importance(VWPolicy(seed=0), [Round({}, ACTIONS, 3), rounds[0]])


def test_report_round_trips_through_json(fitted: tuple[VWPolicy, list[Round]]) -> None:
    policy, rounds = fitted
    features = permutation_importance(policy, rounds[:50], repeats=1, seed=0)
    report = ImportanceReport("v1", "vw", 50, 1, 0, tuple(features), "note")
    text = json.dumps(report.to_dict(), allow_nan=False)  # no NaN in the document
    back = ImportanceReport.from_dict(json.loads(text))
    assert back.version == "v1" and back.rounds == 50 and back.note == "note"
    assert [f.feature for f in back.features] == [f.feature for f in features]
    assert [f.reward_change for f in back.features] == [f.reward_change for f in features]
    assert all(math.isnan(f.reward_change_sd) for f in back.features)
    with pytest.raises(InvalidInputError, match="feature-importance"):
        ImportanceReport.from_dict({"version": "v"})

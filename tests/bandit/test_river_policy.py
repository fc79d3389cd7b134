"""RiverPolicy beyond the conformance suite: exact Thompson pmf, fractional rewards, JSON state."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from bandit.errors import InvalidInputError, ModelFormatError
from bandit.policies.base import read_snapshot_header
from bandit.policies.river_policy import RiverPolicy
from tests.helpers.contexts import catalog_actions, citizen


def _trained(**params: object) -> RiverPolicy:
    policy = RiverPolicy(seed=2, **params)  # type: ignore[arg-type]
    actions = catalog_actions(8)
    for i in range(80):
        ctx = citizen(weeks_unemployed=i % 50).features()
        d = policy.choose(ctx, actions, event_id=f"t{i}")
        policy.learn(d, float(d.chosen in (2, 5) and i % 3 != 0))
    return policy


def test_thompson_pmf_is_the_exact_share_of_greedy_members() -> None:
    policy = _trained(n_members=7, floor=0.0)
    ctx, actions = citizen(weeks_unemployed=10).features(), catalog_actions(8)
    scores = policy._member_scores(ctx, actions)
    counts = np.zeros(8)
    for row in scores:
        best = np.flatnonzero(row == row.max())
        counts[best] += 1.0 / len(best)
    pmf = policy.probabilities(ctx, actions)
    np.testing.assert_allclose(pmf, counts / 7, atol=1e-12)
    assert set(np.round(pmf * 7, 9)) <= {float(k) for k in range(8)}  # multiples of 1/7


def test_expected_reward_is_the_ensemble_mean_probability() -> None:
    policy = _trained(n_members=5)
    ctx, actions = citizen().features(), catalog_actions(8)
    d = policy.choose(ctx, actions, event_id="x")
    np.testing.assert_allclose(
        d.expected_rewards, policy._member_scores(ctx, actions).mean(axis=0), atol=1e-12
    )
    assert all(0.0 < r < 1.0 for r in d.expected_rewards)


def test_bootstrap_weights_differ_between_members() -> None:
    policy = _trained(n_members=6)
    intercepts = {round(m.intercept, 12) for m in policy._models}
    assert len(intercepts) > 1  # Poisson(1) weights make the members disagree


def test_fractional_reward_equals_weighted_positive_and_negative() -> None:
    """r = 0.25 learns like a positive with weight 0.25 plus a negative with weight 0.75."""
    a = RiverPolicy(exploration="epsilon", seed=1)
    b = RiverPolicy(exploration="epsilon", seed=1)
    ctx, actions = citizen().features(), catalog_actions(4)
    d = a.choose(ctx, actions, event_id="e")
    a.learn(d, 0.25)
    x = b._rows(d.context, [d.chosen_action])[0]
    b._models[0].learn_one(x, True, w=0.25)
    b._models[0].learn_one(x, False, w=0.75)
    assert a._models[0].weights == b._models[0].weights
    c = RiverPolicy(exploration="epsilon", seed=1)
    c.learn(c.choose(ctx, actions, event_id="e"), 7.0)  # clipped to 1
    assert c._models[0].weights != a._models[0].weights


def test_snapshot_is_json_not_pickle() -> None:
    data = _trained(n_members=3).to_bytes()
    _, payload = read_snapshot_header(data)
    state = json.loads(payload)
    assert len(state) == 3 and set(state[0]) == {"weights", "intercept", "n_iterations"}
    assert any(k.startswith("a:id=") for k in state[0]["weights"])


def test_pickle_round_trip_uses_the_snapshot() -> None:
    policy = _trained(exploration="epsilon")
    clone = pickle.loads(pickle.dumps(policy))  # noqa: S301 (our own bytes)
    ctx, actions = citizen().features(), catalog_actions(8)
    np.testing.assert_array_equal(
        clone.probabilities(ctx, actions), policy.probabilities(ctx, actions)
    )


@pytest.mark.parametrize(
    "payload",
    [b"not json", b"{}", b"[]", b'[{"weights": 3, "intercept": 0, "n_iterations": 0}]'],
)
def test_bad_payloads_are_rejected(payload: bytes) -> None:
    with pytest.raises(ModelFormatError):
        RiverPolicy(exploration="epsilon")._load_state(payload)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"exploration": "ucb"}, "exploration"),
        ({"epsilon": -0.1}, "epsilon"),
        ({"n_members": 0}, "n_members"),
        ({"n_members": 2.5}, "n_members"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"l2": float("nan")}, "l2"),
    ],
)
def test_invalid_params_are_rejected(params: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        RiverPolicy(**params)  # type: ignore[arg-type]

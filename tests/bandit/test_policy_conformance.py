"""Conformance suite run over every registered policy and each of its unit-test params."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from bandit.errors import InvalidInputError, ModelFormatError
from bandit.policies import POLICY_REGISTRY, Policy, policy_class, policy_from_bytes
from bandit.types import Decision
from tests.helpers.contexts import catalog_actions, citizen

CASES = [
    pytest.param(name, params, id=f"{name}-{i}")
    for name in sorted(POLICY_REGISTRY)
    for i, params in enumerate(policy_class(name)._unit_test_params())
]


def make(name: str, params: dict[str, object]) -> Policy:
    return policy_class(name)(**params)


def learn_one(policy: Policy, ctx: dict[str, object], d: Decision, job_week: int | None) -> None:
    """One outcome: a job in ``job_week`` (or none); hazard learners get the citizen-weeks."""
    learn_at_risk = getattr(policy, "learn_at_risk", None)
    if getattr(policy, "learns_hazard", False) and learn_at_risk is not None:
        weeks = 3 if job_week is None else job_week
        for week in range(weeks):
            learn_at_risk(ctx, d.chosen_action, week, job=False)
        if job_week is not None:
            learn_at_risk(ctx, d.chosen_action, job_week, job=True)
    else:
        policy.learn(d, float(job_week is not None))


def train(policy: Policy, n: int = 60) -> None:
    actions = catalog_actions(8)
    for i in range(n):
        ctx = citizen(weeks_unemployed=i % 40, age=20 + i % 40).features()
        d = policy.choose(ctx, actions, event_id=f"train-{i}")
        learn_one(policy, ctx, d, i % 4 if i % 3 == 0 else None)


@pytest.mark.parametrize(("name", "params"), CASES)
def test_pmf_is_valid_and_floored(name: str, params: dict[str, object]) -> None:
    policy = make(name, params)
    train(policy)
    for k in (1, 2, 10, 50):
        actions = catalog_actions(k)
        d = policy.choose(citizen().features(), actions, event_id=f"e-{k}")
        pmf = np.asarray(d.pmf)
        assert pmf.shape == (k,)
        assert math.isclose(pmf.sum(), 1.0, abs_tol=1e-9)
        floors = policy.exploration_probabilities(actions)
        assert (pmf >= floors - 1e-12).all()
        assert floors.sum() == pytest.approx(policy.floor)
        assert d.propensity == d.pmf[d.chosen]
        assert d.action_ids == tuple(a.id for a in actions)
        assert len(d.expected_rewards) == k and all(math.isfinite(r) for r in d.expected_rewards)
        assert d.policy == name and d.model_version == policy.model_version


@pytest.mark.parametrize(("name", "params"), CASES)
def test_only_eligible_actions_are_chosen(name: str, params: dict[str, object]) -> None:
    policy = make(name, params)
    actions = catalog_actions(12)
    allowed = actions[3:7]
    allowed_ids = {a.id for a in allowed}
    seen = {
        policy.choose(citizen().features(), allowed, event_id=f"e{i}").chosen_action.id
        for i in range(200)
    }
    assert seen <= allowed_ids
    assert len(seen) == len(allowed_ids)  # with a floor every eligible action shows up in 200 draws


@pytest.mark.parametrize(("name", "params"), CASES)
def test_same_seed_and_event_id_same_choice(name: str, params: dict[str, object]) -> None:
    a, b = make(name, params), make(name, params)
    train(a)
    train(b)
    actions = catalog_actions(20)
    ctx = citizen().features()
    choices_a = [a.choose(ctx, actions, event_id=f"x{i}").chosen for i in range(30)]
    choices_b = [b.choose(ctx, actions, event_id=f"x{i}").chosen for i in range(30)]
    assert choices_a == choices_b
    # order independence: asking in reverse order gives the same per-event choice
    reverse = [a.choose(ctx, actions, event_id=f"x{i}").chosen for i in reversed(range(30))]
    assert reverse[::-1] == choices_a


@pytest.mark.parametrize(("name", "params"), CASES)
def test_save_load_round_trip(name: str, params: dict[str, object], tmp_path: Path) -> None:
    policy = make(name, params)
    train(policy)
    path = tmp_path / "model.nbi"
    version = policy.save(path)
    restored = policy_from_bytes(path.read_bytes())
    assert type(restored) is type(policy)
    assert restored.model_version == version == policy.model_version
    actions = catalog_actions(15)
    ctx = citizen(weeks_unemployed=30).features()
    for i in range(20):
        d1 = policy.choose(ctx, actions, event_id=f"r{i}")
        d2 = restored.choose(ctx, actions, event_id=f"r{i}")
        assert d1.chosen == d2.chosen
        np.testing.assert_allclose(d1.pmf, d2.pmf, rtol=0, atol=1e-6)
    # both keep learning identically after the round trip
    learn_one(policy, dict(ctx), policy.choose(ctx, actions, event_id="after"), 1)
    learn_one(restored, dict(ctx), restored.choose(ctx, actions, event_id="after"), 1)
    assert policy.model_version == restored.model_version


@pytest.mark.parametrize(("name", "params"), CASES)
def test_clone_and_params(name: str, params: dict[str, object]) -> None:
    policy = make(name, params)
    train(policy, 10)
    fresh = policy.clone()
    assert fresh.get_params() == policy.get_params()
    assert fresh.n_updates == 0
    for key, value in params.items():
        assert policy.get_params()[key] == value
    assert type(policy).__doc__


@pytest.mark.parametrize(("name", "params"), CASES)
def test_bad_inputs_are_rejected(name: str, params: dict[str, object]) -> None:
    policy = make(name, params)
    actions = catalog_actions(3)
    with pytest.raises(InvalidInputError, match="at least one eligible action"):
        policy.choose({}, [], event_id="e")
    with pytest.raises(InvalidInputError, match="unique action ids"):
        policy.choose({}, [actions[0], actions[0]], event_id="e")
    with pytest.raises(InvalidInputError, match="non-empty event_id"):
        policy.choose({}, actions, event_id="")
    d = policy.choose(citizen().features(), actions, event_id="e")
    with pytest.raises(InvalidInputError, match="finite reward"):
        policy.learn(d, float("nan"))
    with pytest.raises(InvalidInputError, match="propensity"):
        policy.learn(d, 1.0, propensity=0.0)
    assert policy.n_updates == 0
    with pytest.raises(ModelFormatError):
        policy_from_bytes(b"garbage")

"""A stored model whose parameters differ from the settings (``NBI_MODEL_PARAM_CHANGE``):
refused with the list of differences by default, replaced by a fresh model with ``restart``,
and with ``migrate`` kept (its learned state) when only exploration parameters differ, e.g. a
store trained before SquareCB's default ``gamma_scale`` went from 50 to 200."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bandit.catalog import default_catalog
from bandit.errors import InvalidInputError, ModelConfigError
from bandit.policies import make_policy, policy_from_bytes
from bandit.policies.vw_policy import VWPolicy
from service.learner import Learner, LearnerConfig
from service.runtime import initial_policy, policy_params
from service.store.base import ModelSnapshot
from service.store.factory import make_store
from tests.helpers.contexts import catalog_actions, citizen

ACTIONS = catalog_actions(12)


def _trained(settings: Any, **changes: Any) -> VWPolicy:
    """A policy built as the settings build it, with ``changes``, that learned 40 outcomes."""
    policy = make_policy("vw", **{**policy_params(settings), **changes})
    assert isinstance(policy, VWPolicy)
    rng = np.random.default_rng(3)
    for i in range(40):
        context = citizen(weeks_unemployed=int(rng.integers(0, 60))).features()
        d = policy.choose(context, ACTIONS, event_id=f"t{i}")
        for week in range(int(rng.integers(1, 6))):
            policy.learn_at_risk(context, d.chosen_action, week, job=bool(rng.random() < 0.2))
        policy.observe_outcome(d.chosen_action, 1.0)
    return policy


def _stored(settings: Any, **changes: Any) -> tuple[Any, VWPolicy]:
    store = make_store(settings)
    old = _trained(settings, **changes)
    store.save_model(ModelSnapshot(old.model_version, old.to_bytes(), 1.0))
    return store, old


def test_by_default_a_model_with_other_exploration_is_refused_with_the_differences(settings):
    store, _ = _stored(settings, gamma_scale=50.0)
    with pytest.raises(ModelConfigError, match=r"gamma_scale: 50\.0 -> 200\.0.*migrate"):
        initial_policy(settings, store)


def test_restart_starts_a_fresh_model(settings):
    store, _ = _stored(settings, gamma_scale=50.0)
    policy = initial_policy(settings.model_copy(update={"model_param_change": "restart"}), store)
    assert policy.n_updates == 0 and policy.get_params()["gamma_scale"] == 200.0


def test_migrate_keeps_what_the_model_learned_and_serves_the_configured_exploration(settings):
    store, old = _stored(settings, gamma_scale=50.0)
    migrate = settings.model_copy(update={"model_param_change": "migrate"})
    policy = initial_policy(migrate, store)
    assert isinstance(policy, VWPolicy)
    assert policy.get_params() == make_policy("vw", **policy_params(settings)).get_params()
    assert policy.n_updates == old.n_updates > 0
    context = citizen(weeks_unemployed=30).features()
    # the same VW weights and statistics: the same estimates ...
    assert np.array_equal(policy.estimates_of(context, ACTIONS), old.estimates_of(context, ACTIONS))
    assert policy.estimates(context, ACTIONS) == old.estimates(context, ACTIONS)
    # ... served with the configured gamma, which here concentrates the pmf
    assert policy.probabilities(context, ACTIONS).max() > old.probabilities(context, ACTIONS).max()


def test_migrate_still_refuses_a_change_of_what_the_model_learned(settings):
    store, _ = _stored(settings, learning_rate=0.1)
    migrate = settings.model_copy(update={"model_param_change": "migrate"})
    with pytest.raises(ModelConfigError, match=r"learning_rate: 0\.1 -> 0\.05"):
        initial_policy(migrate, store)


def test_the_learner_migrates_the_same_way_and_publishes_the_new_parameters(settings):
    store, old = _stored(settings, gamma_scale=50.0, floor=0.05)
    config = LearnerConfig(block_ms=0, lease_ms=300, delay_strategy="hazard", snapshot_every=1)

    def learner(param_change: str) -> Learner:
        factory = lambda: make_policy("vw", **policy_params(settings))  # noqa: E731
        learner = Learner(store, default_catalog(), factory, config)
        learner.param_change = param_change
        return learner

    with pytest.raises(ModelConfigError, match=r"floor: 0\.05 -> 0\.03; gamma_scale"):
        learner("refuse").load()
    migrating = learner("migrate")
    loaded = migrating.load()
    assert loaded.n_updates == old.n_updates and loaded.floor == 0.03
    assert isinstance(loaded, VWPolicy) and loaded.gamma_scale == 200.0
    assert migrating.feedback is not None and migrating.feedback.policy is loaded
    # what it publishes next is the learned model with the configured parameters
    assert (
        policy_from_bytes(loaded.to_bytes()).get_params()
        == make_policy("vw", **policy_params(settings)).get_params()
    )


def test_only_exploration_parameters_can_change_on_a_trained_model(settings):
    policy = _trained(settings)
    with pytest.raises(InvalidInputError, match=r"not \['learning_rate'\]"):
        policy.with_params(learning_rate=0.1)
    assert "gamma_scale" not in VWPolicy(exploration="regcb").exploration_params()
    assert make_policy("uniform").exploration_params() == frozenset({"floor"})

"""RiverPolicy's vectorised scoring is river's arithmetic, bit for bit.

The policy scores every action on a dense copy of each model's weights (``_Columns``) instead
of building one feature dict per action and calling ``predict_proba_one``. These tests pin
that the scores equal river's own predictions exactly, that the copy stays equal to river's
weights through learning and reloads, and that choices, pmfs, expected rewards and the learned
state are those of the implementation before the change (fingerprints recorded from it).
"""

from __future__ import annotations

import hashlib
from importlib.metadata import version
from typing import Any

import numpy as np
import pytest

from bandit.policies.river_policy import RiverPolicy
from bandit.types import Action
from tests.helpers.contexts import catalog_actions, citizen

_CUSTOM = Action("custom", {"family": "mentor", "length_weeks": 7, "remote": True})


def _context(rng: np.random.Generator) -> dict[str, Any]:
    return dict(
        citizen(
            weeks_unemployed=int(rng.integers(0, 80)),
            age=int(rng.integers(18, 66)),
            cv_tokens=("welding", "forklift")[: int(rng.integers(0, 3))],
        ).features()
    )


def _train(policy: RiverPolicy, actions: list[Action], rounds: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    mixed = [*actions[:-1], _CUSTOM]  # a set whose actions have different numbers of items
    for i in range(rounds):
        acts = mixed if i % 5 == 2 else actions
        d = policy.choose(_context(rng), acts, event_id=f"t{i}")
        policy.learn(d, [0.0, 1.0, 0.25][i % 3] if d.chosen % 2 == 0 else float(i % 4 == 0))


def _river_predictions(policy: RiverPolicy, ctx: dict[str, Any], acts: list[Action]) -> Any:
    rows = policy._rows_plain(ctx, acts)
    return [[m.predict_proba_one(x)[True] for x in rows] for m in policy._models]


POLICIES = [
    {"exploration": "epsilon", "seed": 1},
    {"exploration": "epsilon", "seed": 2, "learning_rate": 3.0},  # large logits: the clamps
    {"exploration": "epsilon", "seed": 3, "l2": 0.05},
    {"exploration": "thompson", "seed": 4, "n_members": 6},
]


@pytest.mark.parametrize("params", POLICIES)
@pytest.mark.parametrize("k", [1, 7, 40])
def test_fast_scores_are_river_predict_proba_one_exactly(params: dict[str, Any], k: int) -> None:
    policy = RiverPolicy(**params)
    actions = catalog_actions(k)
    _train(policy, catalog_actions(12), 60)
    rng = np.random.default_rng(9)
    for acts in (actions, [*actions[:-1], _CUSTOM]):
        for _ in range(5):
            ctx = _context(rng)
            fast = policy._fast_scores(ctx, acts)
            assert fast is not None
            expected = _river_predictions(policy, ctx, acts)
            assert fast[0] == expected  # bit-identical, not merely close
            np.testing.assert_allclose(
                np.array(fast[0], float), np.array(expected, float), rtol=0, atol=1e-12
            )
            for index in range(len(acts)):  # the row learn() rebuilds is the scored row
                row, cols = fast[1].row(index)
                plain = policy._rows_plain(ctx, [acts[index]])[0]
                assert list(row.items()) == list(plain.items())
                assert len(cols) == len(row)


def test_saturated_logits_hit_rivers_integer_clamps() -> None:
    policy = RiverPolicy(exploration="epsilon", seed=2, learning_rate=50.0)
    _train(policy, catalog_actions(6), 40)
    ctx = _context(np.random.default_rng(1))
    fast = policy._fast_scores(ctx, catalog_actions(6))
    assert fast is not None
    assert fast[0] == _river_predictions(policy, ctx, catalog_actions(6))
    assert any(type(p) is int for p in fast[0][0])  # river returns 0 / 1 past |logit| 30


@pytest.mark.parametrize("params", POLICIES)
def test_weight_copy_equals_river_weights_after_learning_and_reload(
    params: dict[str, Any],
) -> None:
    policy = RiverPolicy(**params)
    _train(policy, catalog_actions(15), 50)
    for p in (policy, RiverPolicy.from_bytes(policy.to_bytes())):
        columns = p._columns
        dense = columns.weights()
        for m, model in enumerate(p._models):
            learned = model.weights
            cols = columns.columns(learned)
            dense = columns.weights()
            assert dense[m, cols].tolist() == list(learned.values())
            others = np.ones(dense.shape[1], bool)
            others[cols] = False
            assert not dense[m, others].any()  # keys river never learned weigh 0


def test_names_that_could_collide_fall_back_to_rivers_dicts() -> None:
    policy = RiverPolicy(exploration="epsilon", seed=1)
    actions = catalog_actions(5)
    _train(policy, actions, 20)
    ctx = {**_context(np.random.default_rng(2)), "odd&name": 1.0}
    assert policy._fast_scores(ctx, actions) is None
    d = policy.choose(ctx, actions, event_id="odd")
    assert d.expected_rewards == tuple(_river_predictions(policy, ctx, list(d.actions))[0])
    policy.learn(d, 1.0)
    odd_action = Action("x&y", {"family": "mentor"})
    assert policy._fast_scores(_context(np.random.default_rng(3)), [odd_action]) is None
    columns = policy._columns
    learned = policy._models[0].weights
    assert columns.weights()[0, columns.columns(learned)].tolist() == list(learned.values())


# Recorded with the implementation before the vectorised scoring (commit d284bbb: one feature
# dict per action, predict_proba_one), river 0.26.1: 120 rounds each of choose / learn (with
# fractional rewards), probabilities() and estimate_of() now and then, then the snapshot.
# Re-recorded when the snapshot header gained the per-family residuals ("family_error"):
# the old digests still matched with that header entry left out.
RECORDED = {
    ("epsilon", 3, None, None, None, 3): "0ae925866c7f5933",
    ("epsilon", 3, 0.2, None, None, 10): "f4d1cb23eebcd93f",
    ("epsilon", 5, None, 0.5, None, 50): "bb90887c44e786d0",
    ("epsilon", 1, None, None, 0.01, 20): "dba8ca2a3c5e0581",
    ("thompson", 4, None, None, None, 10): "268c24dda02bc78f",
    ("thompson", 4, 4, None, None, 2): "b459fad616a81dcf",
    ("thompson", 6, 10, None, None, 70): "90251ff7c8e6c15c",
}


def _fingerprint(policy: RiverPolicy, k: int, rounds: int = 120) -> str:
    acts = catalog_actions(k)
    mixed = [*acts[:-1], _CUSTOM]
    h = hashlib.sha256()
    rng = np.random.default_rng(11)
    for i in range(rounds):
        ctx = _context(rng)
        a = mixed if i % 7 == 3 else acts
        d = policy.choose(ctx, a, event_id=f"e{i}")
        h.update(repr((d.chosen, d.pmf, d.expected_rewards)).encode())
        r = [0.0, 1.0, 0.25][i % 3] if d.chosen % 2 == 0 else float(i % 4 == 0)
        if i % 11 == 5:
            h.update(repr(policy.probabilities(ctx, a).tolist()).encode())
            h.update(repr(policy.estimate_of(ctx, a[0])).encode())
        policy.learn(d, r)
    h.update(policy.to_bytes())
    return h.hexdigest()[:16]


@pytest.mark.skipif(version("river") != "0.26.1", reason="recorded with river 0.26.1")
@pytest.mark.parametrize(("key", "digest"), list(RECORDED.items()))
def test_outputs_are_those_of_the_previous_implementation(
    key: tuple[Any, ...], digest: str
) -> None:
    exploration, seed, third, lr, l2, k = key
    params: dict[str, Any] = {"exploration": exploration, "seed": seed}
    if third is not None:
        params["epsilon" if exploration == "epsilon" else "n_members"] = third
    if lr is not None:
        params["learning_rate"] = lr
    if l2 is not None:
        params["l2"] = l2
    assert _fingerprint(RiverPolicy(**params), k) == digest


def test_column_index_starting_over_keeps_scores_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past _MAX_COLUMNS the key index starts over with the learned keys only; a choice
    scored before that and learned after it still updates the copy right."""
    from bandit.policies import river_policy

    monkeypatch.setattr(river_policy, "_MAX_COLUMNS", 700)
    policy = RiverPolicy(n_members=3, seed=5)
    actions = catalog_actions(30)
    rng = np.random.default_rng(4)
    for i in range(40):
        ctx = _context(rng)
        d = policy.choose(ctx, actions, event_id=f"r{i}")
        policy.probabilities(_context(rng), catalog_actions(9))  # may start the index over
        policy.learn(d, float(i % 3 == 0))
        fast = policy._fast_scores(ctx, actions)
        assert fast is not None
        assert fast[0] == _river_predictions(policy, ctx, actions)
    assert policy._columns.generation > 0
    assert policy._columns.usable
    columns = policy._columns
    for m, model in enumerate(policy._models):
        learned = model.weights
        assert columns.weights()[m, columns.columns(learned)].tolist() == list(learned.values())

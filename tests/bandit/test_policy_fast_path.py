"""The policies' fast paths change no result: plain-Python pmf arithmetic bit-identical to the
numpy functions, the same VW example text, the same river feature dicts, and learning that
reuses the choice's scores identical to learning that predicts again."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from bandit.policies.base import apply_floor
from bandit.policies.river_policy import RiverPolicy, _column_sums
from bandit.policies.smallk import (
    apply_floor_list,
    epsilon_greedy_pmf_list,
    np_sum,
    sample_index,
    squarecb_pmf_list,
)
from bandit.policies.vw_policy import VWPolicy, epsilon_greedy_pmf, squarecb_pmf
from bandit.types import Action
from bandit.vw.workspace import VWLearner
from tests.helpers.contexts import catalog_actions, citizen

RNG = np.random.default_rng(20)


def _values(n: int) -> np.ndarray:
    """Positive values over ten orders of magnitude (rounding differences would show)."""
    out: np.ndarray = RNG.random(n) * 10.0 ** RNG.uniform(-5, 5, n)
    return out


@pytest.mark.parametrize("n", [*range(1, 140), 255, 256, 257, 300, 1000])
def test_np_sum_is_numpys_pairwise_sum(n: int) -> None:
    x = _values(n)
    assert np_sum(x.tolist()) == float(x.sum())


@pytest.mark.parametrize("k", [1, 2, 3, 7, 8, 9, 10, 17, 50, 64])
def test_pmf_lists_equal_the_numpy_functions(k: int) -> None:
    for _ in range(20):
        costs = RNG.normal(size=k)
        if k > 2:  # noqa: PLR2004
            costs[RNG.integers(0, k)] = costs.min()  # a tie for the best
        gamma = float(RNG.uniform(0, 500))
        assert squarecb_pmf_list(costs.tolist(), gamma) == squarecb_pmf(costs, gamma).tolist()
        eps = float(RNG.uniform(0, 1))
        assert epsilon_greedy_pmf_list(costs.tolist(), eps) == (
            epsilon_greedy_pmf(costs, eps).tolist()
        )
        pmf = _values(k)
        weights = _values(k)
        floor = float(RNG.uniform(0, 0.2))
        assert apply_floor_list(pmf.tolist(), floor, None) == apply_floor(pmf, floor).tolist()
        assert apply_floor_list(pmf.tolist(), floor, weights.tolist()) == (
            apply_floor(pmf, floor, weights).tolist()
        )
        floored = apply_floor(pmf, floor, weights)
        u = float(RNG.random())
        cdf = np.cumsum(floored)
        expected = min(int(np.searchsorted(cdf, u * cdf[-1], side="right")), k - 1)
        assert sample_index(floored.tolist(), u) == expected
    for degenerate in (np.zeros(k), np.full(k, -1.0), np.full(k, np.inf)):
        assert apply_floor_list(degenerate.tolist(), 0.1, None) == (
            apply_floor(degenerate, 0.1).tolist()
        )


@pytest.mark.parametrize("members", [1, 2, 3, 9, 10, 33, 100])
def test_column_sums_add_members_in_numpys_axis0_order(members: int) -> None:
    for k in (2, 3, 9, 10, 64):
        scores = RNG.random((members, k)) * 10.0 ** RNG.uniform(-3, 3, (members, k))
        means = [s / members for s in _column_sums(scores.tolist())]
        assert means == scores.mean(axis=0).tolist()


def _stream(n: int) -> list[tuple[dict[str, Any], float]]:
    rng = np.random.default_rng(5)
    return [
        (
            citizen(
                weeks_unemployed=int(rng.integers(0, 60)),
                age=int(rng.integers(20, 60)),
                last_sector=("it", "retail", "construction")[i % 3],
                labour_demand_index=float(rng.uniform(0.3, 2.5)),
            ).features(),
            float(rng.random() < 0.4),
        )
        for i in range(n)
    ]


def _numpy_choice(
    policy: Any, ctx: dict[str, Any], actions: list[Action], event: str
) -> tuple[tuple[float, ...], tuple[float, ...], int]:
    """What choose() computed before the fast path: the numpy pipeline of the base class."""
    from bandit.policies.base import deterministic_uniform

    expected = policy._expected_rewards(ctx, actions)
    pmf = apply_floor(
        policy._pmf(ctx, actions, expected), policy.floor, policy._exploration_weights(actions)
    )
    cdf = np.cumsum(pmf)
    u = deterministic_uniform(policy.seed, event)
    index = min(int(np.searchsorted(cdf, u * cdf[-1], side="right")), len(actions) - 1)
    return tuple(np.asarray(expected, dtype=float).tolist()), tuple(pmf.tolist()), index


VW_PARAMS = [
    {},
    {"exploration": "epsilon", "epsilon": 0.1},
    {"loss": "squared", "optimism": 0.0},
    {"explore_families": False},
    {"family_calibration": 20.0},
]


@pytest.mark.parametrize("params", VW_PARAMS)
@pytest.mark.parametrize("k", [2, 10, 23, 24, 50, 64, 65, 120])
def test_vw_choices_are_bit_identical_to_the_numpy_pipeline(params: dict[str, Any], k: int) -> None:
    policy = VWPolicy(seed=3, **params)
    actions = catalog_actions(k)
    for i, (ctx, reward) in enumerate(_stream(60)):
        event = f"e{i}"
        expected, pmf, index = _numpy_choice(policy, ctx, actions, event)
        d = policy.choose(ctx, actions, event_id=event)
        assert (d.expected_rewards, d.pmf, d.chosen) == (expected, pmf, index)
        policy.learn(d, reward)


class _Recorder:
    """The real VW learner, recording the example texts it is given."""

    def __init__(self, learner: VWLearner) -> None:
        self.learner = learner
        self.texts: list[str] = []

    def predict_text(self, text: str) -> list[float]:
        self.texts.append(text)
        return self.learner.predict_text(text)

    def learn_text(self, text: str) -> None:
        self.texts.append(text)
        self.learner.learn_text(text)

    def predict(self, example: list[str]) -> list[float]:
        return self.predict_text("\n".join(example))


def test_vw_example_text_is_byte_identical() -> None:
    """The cached action block gives the text build_example's lines always gave."""
    from bandit.vw.examples import build_example, format_shared

    policy = VWPolicy(seed=1)
    recorder = _Recorder(policy._scorer)
    policy._scorer = recorder  # type: ignore[assignment]
    actions = catalog_actions(12)
    for i, (ctx, reward) in enumerate(_stream(5)):
        d = policy.choose(ctx, actions, event_id=f"t{i}")
        assert recorder.texts[-1] == "\n".join(
            build_example(format_shared(ctx), policy._lines.lines(actions))
        )
        policy.learn(d, reward)
        label = (0, policy._label(reward), 1.0)
        line = [policy._lines.line(actions[d.chosen])]
        assert recorder.texts[-1] == "\n".join(build_example(format_shared(ctx), line, label=label))
    policy._scorer = recorder.learner


@pytest.mark.parametrize(
    ("make", "k"),
    [
        (lambda: VWPolicy(seed=4), 10),
        (lambda: VWPolicy(seed=4), 80),
        (lambda: RiverPolicy(exploration="epsilon", seed=4), 10),
        (lambda: RiverPolicy(n_members=10, seed=4), 10),
        (lambda: RiverPolicy(n_members=10, seed=4), 70),
    ],
)
def test_learning_from_the_choice_equals_learning_by_predicting_again(make: Any, k: int) -> None:
    """learn(d) on the decision just chosen reuses its scores; learn on a copy of it (a
    different object, so the base class predicts again, as before) must train the same
    model, the same error statistics and the same next choices.

    River's snapshot is then byte-identical. VW's differs in one counter only: ``t``, the
    number of examples VW has processed, predictions included (the skipped prediction is one
    fewer); with VW's default adaptive, normalised updates it takes no part in learning, so
    the weights and every prediction stay bit-identical (checked on fresh contexts)."""
    fast, slow = make(), make()
    actions = catalog_actions(k)
    for i, (ctx, reward) in enumerate(_stream(50)):
        d_fast = fast.choose(ctx, actions, event_id=f"e{i}")
        d_slow = slow.choose(ctx, actions, event_id=f"e{i}")
        assert d_fast == d_slow
        fast.learn(d_fast, reward)
        slow.learn(dataclasses.replace(d_slow), reward)
        assert fast._error_stats == slow._error_stats
    if isinstance(fast, RiverPolicy):
        assert fast.to_bytes() == slow.to_bytes()
    for i, (ctx, _) in enumerate(_stream(80)[50:]):
        assert fast.choose(ctx, actions, event_id=f"f{i}") == slow.choose(
            ctx, actions, event_id=f"f{i}"
        )
        assert fast.probabilities(ctx, actions).tolist() == (
            slow.probabilities(ctx, actions).tolist()
        )


@pytest.mark.parametrize("k", [1, 5, 40])
def test_river_rows_are_the_same_dicts_in_the_same_order(k: int) -> None:
    policy = RiverPolicy(seed=2)
    actions = catalog_actions(k)
    extra = Action("custom", {"family": "mentor", "length_weeks": 7, "remote": True})
    for acts in (actions, [*actions[: k - 1], extra]):
        for ctx, _ in _stream(8):
            prepared = policy._prepare(acts)
            policy._current_set = prepared
            fast = policy._rows(ctx, prepared.actions)
            plain = policy._rows_plain(ctx, acts)
            assert [list(r.items()) for r in fast] == [list(r.items()) for r in plain]

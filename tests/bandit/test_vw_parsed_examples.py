"""Predictions on parsed, reused action examples equal the text path bit for bit.

``VWLearner.predict_parsed`` parses only the ``shared`` line and reuses the action examples
``VWLearner.action_examples`` parsed once (VW merges the shared features into them and takes
them out again during the prediction). Compared with ``==`` on floats against
``VWLearner.predict_text`` on trained models, for random contexts and action subsets of the
shipped catalog, with learning in between, and through whole policies (one on each path),
including a reload and a hot swap of the workspace under a policy whose examples are cached.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bandit.catalog import default_catalog
from bandit.policies.vw_policy import VWPolicy
from bandit.types import Action, Features
from bandit.vw.examples import format_shared
from bandit.vw.workspace import VWLearner
from tests.helpers.contexts import citizen

ACTIONS = [item.as_action() for item in default_catalog()]  # 330 offers
SECTORS = ("it", "retail", "construction", "health_care", "transport")
EDUCATION = ("lower_secondary", "upper_secondary", "vocational", "bachelor", "master")
CV = ("welding", "forklift", "excel", "c++ dev", "care")


def _contexts(n: int, seed: int) -> list[tuple[Features, float]]:
    rng = np.random.default_rng(seed)
    out: list[tuple[Features, float]] = []
    for _ in range(n):
        ctx = citizen(
            age=int(rng.integers(18, 66)),
            education=EDUCATION[int(rng.integers(0, len(EDUCATION)))],
            weeks_unemployed=int(rng.integers(0, 90)),
            benefit_history_weeks=int(rng.integers(0, 120)),
            last_sector=SECTORS[int(rng.integers(0, len(SECTORS)))],
            labour_demand_index=float(rng.uniform(0.2, 3.0)),
            cv_tokens=tuple(CV[: int(rng.integers(0, len(CV) + 1))]),
        )
        out.append((ctx.features(), float(rng.random() < 0.3)))
    return out


def _subset(rng: np.random.Generator, k: int) -> list[Action]:
    return [ACTIONS[i] for i in rng.permutation(len(ACTIONS))[:k]]


def _both_paths(policy: VWPolicy, context: Features, actions: list[Action]) -> None:
    scorer = policy._scorer
    shared = format_shared(context)
    lines = policy._lines.lines(actions)
    text = scorer.predict_text("\n".join([shared, *lines]))
    parsed = scorer.predict_parsed(shared, scorer.action_examples(lines))
    assert parsed == text
    assert all(isinstance(c, float) for c in parsed)


@pytest.mark.parametrize("params", [{}, {"target": "hazard"}, {"loss": "squared"}])
@pytest.mark.parametrize("k", [10, 50, 330])
def test_parsed_predictions_equal_the_text_path(params: dict[str, Any], k: int) -> None:
    policy = VWPolicy(seed=7, **params)
    rng = np.random.default_rng(k)
    stream = _contexts(600, seed=k)
    for step, (ctx, reward) in enumerate(stream):
        actions = _subset(rng, k)
        if step % 3 == 0:  # predictions between learning steps
            _both_paths(policy, ctx, actions)
        action = actions[int(rng.integers(0, k))]
        if policy.learns_hazard:
            policy.learn_at_risk(ctx, action, int(rng.integers(0, 26)), job=reward > 0)
        else:
            d = policy.choose(ctx, actions, event_id=f"e{step}")
            policy.learn(d, reward)
    for ctx, _ in _contexts(60, seed=k + 1):  # the trained model, many contexts and subsets
        _both_paths(policy, ctx, _subset(rng, k))
    policy.close()


def test_repeated_lines_get_their_own_examples() -> None:
    policy = VWPolicy(seed=2)
    stream = _contexts(200, seed=3)
    actions = ACTIONS[:10]
    for i, (ctx, reward) in enumerate(stream):
        policy.learn(policy.choose(ctx, actions, event_id=f"r{i}"), reward)
    scorer = policy._scorer
    lines = policy._lines.lines(actions)
    doubled = [lines[0], lines[1], lines[0], lines[2], lines[0]]
    examples = scorer.action_examples(doubled)
    assert len({id(e) for e in examples}) == len(doubled)
    for ctx, _ in stream[:20]:
        shared = format_shared(ctx)
        text = scorer.predict_text("\n".join([shared, *doubled]))
        assert scorer.predict_parsed(shared, examples) == text
    policy.close()


def _decide(
    policy: VWPolicy, stream: list[tuple[Features, float]], k: int, tag: str
) -> list[tuple[Any, ...]]:
    rng = np.random.default_rng(k)
    out: list[tuple[Any, ...]] = []
    for i, (ctx, reward) in enumerate(stream):
        actions = ACTIONS[:k] if i % 2 else _subset(rng, k)  # a repeated set and fresh ones
        d = policy.choose(ctx, actions, event_id=f"{tag}{i}")
        out.append((d.expected_rewards, d.pmf, d.chosen))
        policy.learn(d, reward)
    return out


@pytest.mark.parametrize("k", [10, 50, 330])
def test_a_policy_on_parsed_examples_decides_as_on_text(k: int) -> None:
    """Two policies, one forced onto the text path: the same decisions, before and after a
    reload, and after a hot swap of the workspace under cached examples."""
    ours, reference = VWPolicy(seed=5), VWPolicy(seed=5)
    reference._scorer.reuse_action_examples = False
    stream = _contexts(240, seed=11)
    assert _decide(ours, stream[:120], k, "a") == _decide(reference, stream[:120], k, "a")

    ours_again = VWPolicy.from_bytes(ours.to_bytes())
    reference_again = VWPolicy.from_bytes(reference.to_bytes())
    reference_again._scorer.reuse_action_examples = False
    assert _decide(ours_again, stream[120:], k, "b") == _decide(
        reference_again, stream[120:], k, "b"
    )

    # Hot swap: ours (examples cached for its old scorer, ACTIONS[:k] among them) takes the
    # other model's workspace; its expected rewards are then the other model's.
    old_scorer = ours._scorer
    ours._load_state(ours_again._dump_state())
    assert ours._scorer is not old_scorer
    assert old_scorer.closed
    assert not old_scorer._parsed  # dropped before the old workspace was finished
    rng = np.random.default_rng(k + 1)
    for i, (ctx, _) in enumerate(stream[:60]):
        actions = ACTIONS[:k] if i % 2 else _subset(rng, k)
        swapped = ours.choose(ctx, actions, event_id=f"c{i}").expected_rewards
        assert swapped == ours_again.choose(ctx, actions, event_id=f"c{i}").expected_rewards
    for p in (ours, reference, ours_again, reference_again):
        p.close()


def test_closing_a_learner_drops_its_parsed_examples() -> None:
    learner = VWLearner(["--cb_adf", "--quiet"])
    learner.learn(["shared |c x", "0:-1:0.5 |a id=q"])
    examples = learner.action_examples(["|a id=p", "|a id=q"])
    before = learner.predict_parsed("shared |c x", examples)
    assert before == learner.predict_text("shared |c x\n|a id=p\n|a id=q")
    assert learner.action_examples(["|a id=q"])[0] is examples[1]
    learner.close()
    assert learner.closed
    assert not learner._parsed
    with VWLearner(["--cb_adf", "--quiet"]) as other:
        with pytest.raises(ValueError, match="one line"):
            other.action_examples(["|a id=p\n|a id=q"])
        with pytest.raises(ValueError, match="one line"):
            other.predict_parsed("shared |c x\n|a id=p", [])

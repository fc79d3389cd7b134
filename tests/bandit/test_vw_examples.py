"""The ADF formatter: exact strings, sanitising, the reward->cost sign, and real VW parsing."""

from __future__ import annotations

import pytest

from bandit.types import Action
from bandit.vw.examples import (
    ActionLineCache,
    build_example,
    format_action,
    format_shared,
    labelled,
    rewards_from_costs,
    sanitise,
)
from bandit.vw.workspace import VWLearner
from tests.helpers.contexts import catalog_actions, citizen


def test_shared_line_from_a_real_citizen() -> None:
    ctx = citizen(weeks_unemployed=26, age=35, labour_demand_index=2.5, single_parent=False)
    line = format_shared(ctx.features())
    assert line.startswith("shared |c ")
    tokens = line.split()[2:]
    assert "target_group=dagpenge" in tokens
    assert "weeks_unemployed:0.5" in tokens
    assert "age:0.5" in tokens
    assert "labour_demand_index:0.5" in tokens
    assert "cv_welding" in tokens
    assert not any(t.startswith("single_parent") for t in tokens)  # False -> omitted
    assert not any("gender" in t or "origin" in t for t in tokens)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("a|b", "a_b"), ("x:1", "x_1"), ("two words", "two_words"), ("tab\there", "tab_here")],
)
def test_sanitise(raw: str, clean: str) -> None:
    assert sanitise(raw) == clean


def test_special_characters_parse_into_the_right_number_of_actions() -> None:
    nasty = [
        Action("id with space", {"sector": "health care|x", "provider": "a:b"}),
        Action("p|q", {"family": "mentor", "length_weeks": 4}),
        Action("r:s", {}),
    ]
    lines = [format_action(a) for a in nasty]
    assert all(
        line.count("|") == 4  # noqa: PLR2004 (namespaces f, o, a and i)
        and ":" not in line.split("|f", 1)[1].replace(":0.", "")
        for line in lines
    )
    with VWLearner(["--cb_adf", "--quiet"]) as vw:
        assert len(vw.predict(build_example("shared |c x", lines))) == 3


def test_label_carries_cost_equal_to_minus_reward() -> None:
    assert labelled("|a id=x", 0.75, 0.2) == "0:-0.75:0.2 |a id=x"
    assert labelled("|a id=x", 0.0, 1.0) == "0:0:1 |a id=x"
    assert labelled("|a id=x", -2.0, 0.5) == "0:2:0.5 |a id=x"
    assert rewards_from_costs([-0.75, 2.0]) == [0.75, -2.0]


def test_learning_a_reward_raises_that_actions_expected_reward_in_real_vw() -> None:
    actions = catalog_actions(5)
    cache = ActionLineCache()
    shared = format_shared(citizen().features())
    with VWLearner(["--cb_adf", "--cb_type", "mtr", "-q", "ca", "--quiet"]) as vw:
        for _ in range(20):
            vw.learn(build_example(shared, cache.lines(actions), label=(3, 1.0, 0.2)))
            vw.learn(build_example(shared, cache.lines(actions), label=(1, 0.0, 0.2)))
        rewards = rewards_from_costs(vw.predict(build_example(shared, cache.lines(actions))))
    assert rewards[3] > 0.8
    assert abs(rewards[1]) < 0.2
    assert max(range(5), key=rewards.__getitem__) == 3


def test_cache_hits_same_object_and_reformats_changed_action() -> None:
    cache = ActionLineCache()
    a = Action("A1", {"family": "mentor"})
    first = cache.line(a)
    assert cache.line(a) is first
    assert cache.line(Action("A1", {"family": "mentor"})) is first  # equal features: still a hit
    changed = cache.line(Action("A1", {"family": "six_week_course"}))
    assert changed == "|f family=six_week_course |o  |a  |i id=A1"
    assert len(cache) == 1


def test_build_example_labels_only_the_chosen_line() -> None:
    ex = build_example("shared |c x", ["|a id=p", "|a id=q", "|a id=r"], label=(2, 1.0, 0.5))
    assert ex == ["shared |c x", "|a id=p", "|a id=q", "0:-1:0.5 |a id=r"]


def test_fast_path_equals_pyvw_public_api() -> None:
    """VWLearner's direct pylibvw predict/learn give exactly pyvw's public-API results."""
    from bandit.vw.workspace import VWLearner

    def example(k: int, label: int | None = None) -> list[str]:
        lines = ["shared |c age:0.5 weeks:0.3 edu=voc"]
        for i in range(k):
            prefix = "0:-1:0.5 " if label == i else ""
            lines.append(f"{prefix}|a id=x{i} family=f{i % 11} length:0.{i % 9}")
        return lines

    args = ["--cb_adf", "--cb_type", "mtr", "-q", "ca", "--quiet"]
    with VWLearner(args) as fast, VWLearner(args) as public:
        for i in range(300):
            fast.learn(example(20, i % 20))
            public._ws.learn(example(20, i % 20))
        for k in (1, 20, 300):
            assert fast.predict(example(k)) == public.predict_public_api(example(k))
        # and the trained model really differs from a fresh one (the comparison is not vacuous)
        with VWLearner(args) as fresh:
            assert fast.predict(example(20)) != fresh.predict(example(20))

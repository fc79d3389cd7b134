"""Explanations: ranking, intervals, lock-in, drivers from case facts only."""

from __future__ import annotations

import re

import pytest

from bandit.catalog import Family, default_catalog
from bandit.context import ProtectedAttributes
from bandit.errors import InvalidInputError
from bandit.explain import (
    DRIVER_FEATURES,
    drivers,
    explain,
    feature_effects_many,
    lock_in_weeks,
)
from bandit.policies import make_policy
from bandit.policies.base import RewardEstimate
from bandit.types import Action, Decision
from tests.helpers.contexts import citizen

CATALOG = default_catalog()


def _first(family: Family, **where: object) -> Action:
    for item in CATALOG:
        if item.family is family and all(getattr(item, k) == v for k, v in where.items()):
            return item.as_action()
    raise AssertionError(family)


def _decision(actions: list[Action], pmf: list[float]) -> Decision:
    return Decision(
        event_id="e",
        context={},
        actions=tuple(actions),
        pmf=tuple(pmf),
        chosen=0,
        propensity=pmf[0],
        expected_rewards=tuple(0.3 for _ in actions),
        model_version="v",
        policy="test",
    )


def test_top_options_follow_the_ranking_with_clipped_intervals() -> None:
    actions = [
        _first(Family.MENTOR),
        _first(Family.PRIVATE_WAGE_SUBSIDY),
        _first(Family.PRIVATE_INTERNSHIP, sector="construction"),
        _first(Family.CLASSROOM_TRAINING),
    ]
    d = _decision(actions, [0.12, 0.5, 0.3, 0.08])
    est = [
        RewardEstimate(0.2, 0.1, 0.3, 5),
        RewardEstimate(0.55, 0.4, 0.7, 40),
        RewardEstimate(0.98, 0.9, 1.06, 3),
        RewardEstimate(-0.02, -0.1, 0.05, 0),
    ]
    ctx = citizen(weeks_unemployed=30).features()
    out = explain(d, est, ctx, CATALOG, top_n=3)
    assert [o.action_id for o in out] == [actions[1].id, actions[2].id, actions[0].id]
    assert [o.rank for o in out] == [1, 2, 3]
    assert [o.probability for o in out] == [0.5, 0.3, 0.12]
    top = out[0]
    assert (top.employment_chance, top.ci_low, top.ci_high, top.evidence_n) == (0.55, 0.4, 0.7, 40)
    assert out[1].ci_high == 1.0  # clipped
    assert top.name == CATALOG.get(actions[1].id).name
    assert top.lock_in_weeks == lock_in_weeks("private_wage_subsidy", top.length_weeks) > 0
    assert out[2].lock_in_weeks == 0.0  # mentor: no lock-in
    assert all(1 <= len(o.drivers) <= 3 for o in out)
    # the internship in the citizen's own sector names the sector match
    assert any("last sector (construction)" in t for t in out[1].drivers)
    assert "long-term" in out[0].drivers[0]


@pytest.mark.parametrize(
    ("family", "length", "weeks"),
    [
        ("private_wage_subsidy", 26, 10.5),
        ("public_wage_subsidy", 17, 8.5),
        ("classroom_training", 8, 4.0),
        ("six_week_course", 6, 2.0),
        ("mentor", 26, 0.0),
        ("standard_contact", 1, 0.0),
    ],
)
def test_lock_in_weeks(family: str, length: int, weeks: float) -> None:
    assert lock_in_weeks(family, length) == weeks


def test_protected_and_sensitive_traits_are_never_reasons() -> None:
    ctx = dict(
        citizen(
            age=62,
            weeks_unemployed=40,
            health_limitation=True,
            single_parent=True,
            danish_proficiency="basic",
            labour_demand_index=0.4,
            benefit_history_weeks=80,
            education="lower_secondary",
        ).features()
    )
    ctx.update(ProtectedAttributes(gender="female", origin="non_western").as_features())
    forbidden = re.compile(
        r"female|\bmale\b|gender|origin|western|\bage\b|62|years old|health|parent|danish|language",
        re.IGNORECASE,
    )
    texts = []
    for family in Family:
        for limit in (3, 5):
            texts += drivers(ctx, family.value, "it", limit=limit)
    assert texts
    for text in texts:
        assert not forbidden.search(text), text
    assert set(DRIVER_FEATURES).isdisjoint({"age", "health_limitation", "single_parent"})


def test_course_for_low_educated_in_low_demand_area_gives_course_reasons() -> None:
    ctx = citizen(education="vocational", labour_demand_index=0.5, weeks_unemployed=15).features()
    texts = drivers(ctx, "six_week_course", "manufacturing")
    assert len(texts) == 3
    assert any(t.startswith("Low local demand") for t in texts[:2])
    assert any(t.startswith("Education (vocational)") for t in texts[:2])


def test_without_facts_there_is_still_one_honest_reason() -> None:
    assert len(drivers({}, "mentor", "any")) == 1


def test_offer_outside_the_catalog_uses_its_own_features() -> None:
    act = Action("X9", {"family": "public_wage_subsidy", "length_weeks": 10, "sector": "it"})
    [opt] = explain(_decision([act], [1.0]), [RewardEstimate(0.3, 0.2, 0.4, 1)], {}, CATALOG)
    assert (opt.name, opt.family, opt.length_weeks, opt.lock_in_weeks) == (
        "X9",
        "public_wage_subsidy",
        10,
        5.0,
    )


def test_bad_inputs() -> None:
    d = _decision([_first(Family.MENTOR)], [1.0])
    with pytest.raises(InvalidInputError, match="one estimate per action"):
        explain(d, [], {}, CATALOG)
    with pytest.raises(InvalidInputError, match="top_n"):
        explain(d, [RewardEstimate(0.3, 0.2, 0.4, 1)], {}, CATALOG, top_n=0)


def test_feature_effects_refuse_a_base_of_another_length() -> None:
    def estimate(ctx: dict[str, object]) -> tuple[float, float]:
        return (0.5 + 0.01 * float(str(ctx.get("weeks_unemployed", 0))), 0.3)

    ctx = {"weeks_unemployed": 30}
    assert feature_effects_many(estimate, ctx, 2, base=(0.9, 0.3))[0] == {"weeks_unemployed": 0.36}
    with pytest.raises(ValueError, match="base holds 1 estimates for 2 offers"):
        feature_effects_many(estimate, ctx, 2, base=(0.9,))


@pytest.mark.parametrize("name", ["vw", "river"])
def test_with_a_trained_learner(name: str) -> None:
    policy = make_policy(name, seed=3)
    actions = [CATALOG[i].as_action() for i in range(0, 330, 30)]
    ctx = citizen(weeks_unemployed=30, labour_demand_index=2.0).features()
    for i in range(60):
        d = policy.choose(ctx, actions, event_id=f"t{i}")
        policy.learn(d, float(d.chosen % 3 == 0))
    d = policy.choose(ctx, actions, event_id="now")
    out = explain(d, policy.estimates(ctx, actions), ctx, CATALOG)
    assert len(out) == 3
    assert out[0].probability >= out[1].probability >= out[2].probability
    for o in out:
        assert 0.0 <= o.ci_low <= o.employment_chance <= o.ci_high <= 1.0
        assert o.drivers


def test_untrained_model_is_not_shown_as_a_confident_zero() -> None:
    """An untrained VW predicts 0 for everything; the shown estimate is the prior, widely unsure."""
    from bandit.policies import make_policy
    from tests.helpers.contexts import catalog_actions, citizen

    policy = make_policy("vw", seed=1)
    actions = catalog_actions(6)
    ctx = citizen().features()
    fresh = policy.estimates(ctx, actions)
    assert all(e.mean == pytest.approx(0.5) and e.n == 0 for e in fresh)
    assert all((e.low, e.high) == (0.0, 1.0) for e in fresh)  # "we do not know yet"
    # after many rewards for one action, its shown mean follows the model and narrows
    for i in range(200):
        d = policy.choose(ctx, actions, event_id=f"e{i}")
        policy.learn(d, 1.0 if d.chosen_action.id == actions[0].id else 0.0)
    learned = {a.id: e for a, e in zip(actions, policy.estimates(ctx, actions), strict=True)}
    best, other = learned[actions[0].id], learned[actions[1].id]
    assert best.n > 20 and best.mean > other.mean
    assert best.high - best.low < fresh[0].high - fresh[0].low
    assert best.low < best.mean < best.high and best.mean > 0.5  # never "0 % (0-0 %)"
    tracked, error = policy.model_error()
    assert tracked == 200 and error > 0

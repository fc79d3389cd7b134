"""The scarce-seat reserve (issue 13, item 1): hand-computed reserves, the priority quantile,
and the engine's decision with a real VW model whose need scores differ by citizen."""

from __future__ import annotations

import pytest

from bandit.catalog import Catalog, Family, Intervention, default_catalog
from bandit.control import Group
from bandit.engine import decide
from bandit.equity import EquityConfig, EquityGate, reserved_seats
from bandit.errors import InvalidInputError
from bandit.feedback import HazardLearner
from bandit.policies import Policy, make_policy
from bandit.types import Action
from simulator.config import SimulationConfig
from simulator.policies import build_policy
from simulator.replay import Replay
from tests.helpers.contexts import citizen

PWS, PI = Family.PRIVATE_WAGE_SUBSIDY, Family.PRIVATE_INTERNSHIP


def _catalog() -> Catalog:
    items = [
        Intervention("STD", "Standard", Family.STANDARD_CONTACT, 1, capacity=None),
        Intervention("W1", "Subsidy 1", PWS, 26, capacity=3),
        Intervention("W2", "Subsidy 2", PWS, 26, capacity=4),
        Intervention("I1", "Internship", PI, 8, capacity=2),
        Intervention("M1", "Mentor", Family.MENTOR, 4, capacity=5),
    ]
    return Catalog(items)


def test_reserve_is_a_share_of_each_scarce_familys_seats() -> None:
    cat = _catalog()
    capacity = {"W1": 3.0, "W2": 4.0, "I1": 2.0, "M1": 5.0}
    # wage subsidies: round(0.3 x 7) = 2; internship: round(0.3 x 2) = 1; mentor: not scarce
    assert reserved_seats(cat, capacity, EquityConfig(reserve_share=0.3)) == {PWS: 2, PI: 1}
    assert reserved_seats(cat, capacity, EquityConfig(reserve_share=0.0)) == {}
    only_w = EquityConfig(reserve_share=0.5, scarce_families=frozenset({PWS}))
    assert reserved_seats(cat, capacity, only_w) == {
        PWS: 4
    }  # round(0.5 x 7) = round(3.5) = 4 (half to even)
    gate = EquityGate.build(cat, capacity, EquityConfig(reserve_share=0.3))
    assert gate is not None
    assert gate.members == {PWS: ("W1", "W2"), PI: ("I1",)}
    assert gate.baseline.id == "STD"


def test_a_non_priority_citizen_sees_a_family_full_at_its_reserve() -> None:
    cat = _catalog()
    gate = EquityGate.build(cat, {"W1": 3.0, "W2": 4.0, "I1": 2.0}, EquityConfig(reserve_share=0.3))
    assert gate is not None
    # 3 subsidy seats free > 2 held: open; 1 internship seat free = 1 held: full
    seats = {"W1": 1, "W2": 2, "I1": 1, "M1": 5}
    assert gate.seats_for(seats, priority=False) == {"W1": 1, "W2": 2, "I1": 0, "M1": 5}
    assert gate.seats_for(seats, priority=True) == seats
    # overbooked offers (negative) count as 0 free seats, not as negative ones
    assert gate.seats_for({"W1": -1, "W2": 3, "I1": 2}, priority=False) == {
        "W1": -1,
        "W2": 3,
        "I1": 2,
    }
    assert gate.seats_for({"W1": 0, "W2": 2, "I1": 2}, priority=False)["W2"] == 0


def test_priority_is_the_lowest_share_of_recent_need_scores() -> None:
    gate = EquityGate(
        EquityConfig(reserve_share=0.5, priority_share=0.25, window=4), {}, {}, _std()
    )
    got = [gate.is_priority(s) for s in (0.6, 0.7, 0.8, 0.9, 0.65, 0.55, 0.85)]
    # 0.6: nothing remembered -> priority; 0.65 vs {0.6,0.7,0.8,0.9}: 1 below, 1 < 1.0 no;
    # then the window forgets 0.6: 0.55 vs {0.7,0.8,0.9,0.65}: 0 below -> priority;
    # 0.85 vs {0.8,0.9,0.65,0.55}: 3 below -> no
    assert got == [True, False, False, False, False, True, False]
    tied = EquityGate(EquityConfig(reserve_share=0.5, priority_share=0.25), {}, {}, _std())
    # ties count half below (mid-rank): a model that cannot tell citizens apart, or saturates
    # near 1, makes none of the tied citizens priority rather than all of them
    assert [tied.is_priority(1.0) for _ in range(4)] == [True, False, False, False]
    # 0.2 vs {1,1,1,1}: mid-rank 0 < 1 -> priority; 0.3 vs {1,1,1,1,0.2}: (1 + 1) / 2 = 1
    # < 1.25 -> priority; 1.0 vs six: (2 + 6) / 2 = 4 >= 1.5 -> no
    assert [tied.is_priority(s) for s in (0.2, 0.3, 1.0)] == [True, True, False]


def _std() -> Action:
    return _catalog().action("STD")


def test_invalid_config_is_refused() -> None:
    with pytest.raises(InvalidInputError):
        EquityConfig(reserve_share=1.5)
    with pytest.raises(InvalidInputError):
        EquityConfig(priority_share=-0.1)
    with pytest.raises(InvalidInputError):
        SimulationConfig(equity_reserve_share=2.0)


def _trained(cat: Catalog) -> Policy:
    """A real VW hazard model taught that a master's graduate finds a job at once and a
    citizen with little education and a health limitation does not (standard contact)."""
    policy = make_policy("vw", target="hazard", horizon_weeks=4, hazard_buckets=(0,), seed=0)
    assert isinstance(policy, HazardLearner)
    std = cat.action("STD")
    easy = citizen(education="master").features()
    hard = citizen(education="lower_secondary", health_limitation=True).features()
    for _ in range(60):
        policy.learn_at_risk(easy, std, 0, job=True)
        for week in range(4):
            policy.learn_at_risk(hard, std, week, job=False)
    return policy


def test_engine_holds_the_reserve_for_the_citizen_in_higher_need() -> None:
    cat = _catalog()
    policy = _trained(cat)
    easy = citizen(education="master", weeks_unemployed=30)
    hard = citizen(education="lower_secondary", health_limitation=True, weeks_unemployed=30)
    gate = EquityGate.build(
        cat,
        {"W1": 3.0, "W2": 4.0, "I1": 2.0, "M1": 5.0},
        EquityConfig(reserve_share=0.3, priority_share=0.5),
    )
    assert gate is not None
    assert gate.need_score(policy, hard.features()) < gate.need_score(policy, easy.features())
    seats = {"W1": 1, "W2": 1, "I1": 2, "M1": 5}  # 2 subsidy seats free = 2 held

    def run(ctx: object, group: Group, n: int) -> set[str]:
        d = decide(
            policy,
            cat,
            ctx,  # type: ignore[arg-type]
            event_id=f"e{n}",
            timestamp=0.0,
            citizen_key="k",
            group=group,
            seats_left=seats,
            equity=gate,
        )
        if group is Group.TREATMENT:
            assert d.need_score is not None
        return set(d.record.eligible)

    assert {"W1", "W2"} <= run(easy, Group.TREATMENT, 0)  # first score: nothing to rank against
    assert {"W1", "W2"} <= run(hard, Group.TREATMENT, 1)  # below the easy one: priority
    blocked = run(easy, Group.TREATMENT, 2)
    assert not blocked & {"W1", "W2"}
    assert "I1" in blocked  # 2 internship seats free > 1 held
    assert {"W1", "W2"} <= run(hard, Group.TREATMENT, 3)
    assert {"W1", "W2"} <= run(easy, Group.CONTROL, 4)  # practice as usual: no reserve


def test_simulator_builds_the_gate_from_its_weekly_seats() -> None:
    cfg = SimulationConfig(scale=0.05, equity_reserve_share=0.5, offers_per_family=1)
    replay = Replay(build_policy("uniform", seed=1), cfg, weeks=2, seed=1, references=False)
    assert replay.equity is not None
    seats = {a.id: s for a, s in zip(replay.actions, replay.weekly_seats, strict=True)}
    by_family = {replay.catalog.get(k).family: v for k, v in seats.items()}  # one offer each
    assert replay.equity.reserve == {
        PWS: round(0.5 * by_family[PWS]),
        PI: round(0.5 * by_family[PI]),
    }
    assert len(replay.run().decisions) > 0
    default = Replay(build_policy("uniform", seed=1), SimulationConfig(scale=0.05), weeks=1, seed=1)
    assert default.equity is not None and default.equity.config.reserve_share == 0.25  # as served
    no_reserve = SimulationConfig(scale=0.05, equity_reserve_share=0.0)
    off = Replay(build_policy("uniform", seed=1), no_reserve, weeks=1, seed=1)
    assert off.equity is None
    assert default_catalog()  # the shipped catalog has a standard contact offer to measure need

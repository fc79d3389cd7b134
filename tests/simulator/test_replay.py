"""The online replay: determinism, arms, compliance and no delayed-outcome leak."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from bandit.policies.uniform import UniformPolicy
from bandit.types import Decision
from simulator.config import SimulationConfig
from simulator.policies import build_policy
from simulator.replay import Replay
from simulator.report import rct_summary, summary, weekly_table


class SpyPolicy(UniformPolicy):
    """A real policy that records the simulated week of every learn() call."""

    name = "uniform"

    def __init__(self, *, floor: float = 0.02, seed: int = 0) -> None:
        super().__init__(floor=floor, seed=seed)
        self.replay: Replay | None = None
        self.learned: list[tuple[str, int, float]] = []

    def learn(
        self,
        decision: Decision,
        reward: float,
        *,
        action_index: int | None = None,
        propensity: float | None = None,
    ) -> None:
        assert self.replay is not None
        self.learned.append((decision.event_id, self.replay.week, reward))
        assert propensity == decision.propensity
        super().learn(decision, reward, action_index=action_index, propensity=propensity)


@pytest.mark.parametrize(("lag", "delay"), [(0, "at_once"), (5, "at_once"), (3, "horizon")])
def test_policy_never_learns_before_the_outcome_is_known(lag: int, delay: str) -> None:
    config = SimulationConfig(scale=0.05, lag_weeks=lag, offers_per_family=1)
    spy = SpyPolicy(seed=2)
    replay = Replay(spy, config, weeks=60, seed=9, delay=delay)
    spy.replay = replay
    d = replay.run().decisions.set_index("event_id")
    assert spy.learned, "the policy never learned"
    early = delay == "at_once"
    seen = set()
    for event_id, learn_week, reward in spy.learned:
        row = d.loc[event_id]
        # Only complied treatment events are learned, once each.
        assert row["group"] == "treatment" and bool(row["complied"])
        assert event_id not in seen
        seen.add(event_id)
        # The outcome is known after the job week, or at the horizon if no job.
        known = row["job_week"] + 1 if row["employed"] and early else config.horizon_weeks
        assert learn_week == row["week"] + known + lag
        assert reward == float(row["employed"])
    # Every complied treatment event whose outcome was due within the span was learned.
    treat = d[(d["group"] == "treatment") & d["complied"]]
    due = treat["week"] + np.where(treat["employed"] & early, treat["job_week"] + 1, 26) + lag
    assert set(treat.index[due < 60]) == seen


def test_hazard_learner_sees_each_citizen_week_only_once_it_is_known() -> None:
    """The hazard strategy learns week t of a decision made in week w no earlier than
    w + t + 1 + lag, every week once, and the job week as the only event."""
    from bandit.policies.vw_policy import VWPolicy

    lag = 2
    learned: list[tuple[str, int, int, bool]] = []

    class SpyHazard(VWPolicy):
        def learn_at_risk(self, context, action, week, *, job):  # type: ignore[no-untyped-def]
            learned.append((str(context.get("_event", "")), replay.week, week, job))
            super().learn_at_risk(context, action, week, job=job)

    config = SimulationConfig(scale=0.05, lag_weeks=lag, offers_per_family=1)
    replay = Replay(SpyHazard(target="hazard", seed=1), config, weeks=40, seed=9)
    events: dict[str, int] = {}
    original = replay.feedback.on_followed

    def tag(decision: Decision, *, timestamp: float) -> None:
        events[decision.event_id] = round(timestamp / (7 * 24 * 3600))
        context = {**decision.context, "_event": decision.event_id}
        original(dataclasses.replace(decision, context=context), timestamp=timestamp)

    replay.feedback.on_followed = tag  # type: ignore[method-assign]
    d = replay.run().decisions.set_index("event_id")
    assert learned
    by_event: dict[str, list[tuple[int, int, bool]]] = {}
    for event_id, learn_week, week, job in learned:
        assert learn_week >= events[event_id] + week + 1 + lag
        by_event.setdefault(event_id, []).append((week, learn_week, job))
    for event_id, rows in by_event.items():
        weeks = [w for w, _, _ in rows]
        assert weeks == list(range(len(weeks)))  # each week once, in order
        jobs = [w for w, _, job in rows if job]
        row = d.loc[event_id]
        if jobs:
            assert jobs == [weeks[-1]] and row["job_week"] == jobs[0] and row["employed"]
        else:
            assert not (row["employed"] and row["job_week"] < weeks[-1] + 1)


def test_same_seed_gives_identical_tables_and_other_seed_differs() -> None:
    config = SimulationConfig(scale=0.05)

    def table(seed: int) -> pd.DataFrame:
        return weekly_table(
            Replay(build_policy("practice", seed=1), config, weeks=30, seed=seed).run()
        )

    a, b, c = table(4), table(4), table(5)
    assert a.to_csv().encode() == b.to_csv().encode()
    assert a.to_csv() != c.to_csv()


def test_arms_compliance_and_report() -> None:
    config = SimulationConfig(scale=0.2, compliance=0.6, control_share=0.2)
    result = Replay(build_policy("uniform", seed=3), config, weeks=20, seed=1).run()
    d = result.decisions
    n = len(d)
    share_control = (d["group"] == "control").mean()
    # Binomial SE sqrt(.2*.8/n) ~ 0.006 for n ~ 4,000; 5 SE.
    assert abs(share_control - 0.2) < 5 * np.sqrt(0.16 / n)
    control = d[d["group"] == "control"]
    assert (control["recommended"] == -1).all() and control["regret"].isna().all()
    treat = d[d["group"] == "treatment"]
    # Followed with prob 0.6, plus practice picking the same action by chance: >= 0.6.
    assert 0.6 - 5 * np.sqrt(0.24 / len(treat)) < treat["complied"].mean() < 0.85
    assert (d["p_oracle"] >= d["p_assigned"] - 1e-12).all()
    rct = rct_summary(result, all_outcomes=True)  # 20 weeks: none known in information time
    assert rct["ci_low"] < rct["difference"] < rct["ci_high"]
    expected_mde = (norm.ppf(0.975) + norm.ppf(0.8)) * np.sqrt(  # the one MDE convention
        rct["employment_control"]
        * (1 - rct["employment_control"])
        * (1 / len(control) + 1 / len(treat))
    )
    assert rct["mde"] == pytest.approx(expected_mde)
    doc = summary(result)
    assert {"treatment", "control", "all"} <= set(doc["totals"])
    assert {r["attribute"] for r in doc["by_group"]} == {"gender", "origin", "age_band"}
    per_week = weekly_table(result)
    assert per_week["benefit_dkk"].sum() == pytest.approx(d["benefit_dkk"].sum())


def test_oracle_recommendations_have_zero_regret() -> None:
    config = SimulationConfig(scale=0.05, capacity_scale=0.0)
    result = Replay(build_policy("oracle"), config, weeks=8, seed=2).run()
    treat = result.decisions[result.decisions["group"] == "treatment"]
    assert len(treat) > 50
    assert np.allclose(treat["regret"], 0.0)


def test_capacity_caps_weekly_assignments_in_both_arms() -> None:
    config = SimulationConfig(scale=0.2, capacity_scale=0.1)
    replay = Replay(build_policy("uniform", seed=1), config, weeks=10, seed=6)
    seats = replay.weekly_seats
    d = replay.run().decisions
    used = d.groupby(["week", "assigned"]).size().unstack(fill_value=0)
    limited = [k for k in used.columns if np.isfinite(seats[k])]
    assert limited
    for k in limited:
        assert (used[k] <= seats[k]).all()
    # The caps bind: some scarce action is full in some week (uniform would exceed them).
    assert any((used[k] == seats[k]).any() for k in limited)
    uncapped = Replay(
        build_policy("uniform", seed=1), SimulationConfig(scale=0.2), weeks=10, seed=6
    )
    free = uncapped.run().decisions.groupby(["week", "assigned"]).size().unstack(fill_value=0)
    assert any((free[k] > seats[k]).any() for k in limited)


def test_decisions_feed_the_fairness_audit_among_the_eligible() -> None:
    """The replay's decisions table is a valid fairness-audit file, eligibility included."""
    from offline_eval.fairness import audit

    config = SimulationConfig(scale=0.2, offers_per_family=1)
    result = Replay(build_policy("uniform", seed=3), config, weeks=12, seed=2).run()
    d = result.decisions
    fams = d["eligible_families"].str.split(";")
    assert (fams.str.len() == d["eligible_count"]).all()  # one offer per family here
    treat = d[d["group"] == "treatment"]
    assert all(r in f for r, f in zip(treat["recommended_family"], fams[treat.index], strict=True))
    rates = audit(d).recommendation_rates
    assert rates["rate_among_eligible"].notna().all()
    assert (rates["rate_among_eligible"] >= rates["rate"] - 1e-12).all()

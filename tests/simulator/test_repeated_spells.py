"""Issue 13.5: the simulator's repeated spells (domain.md 5.3) and the history the policy sees."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bandit.context import TargetGroup
from bandit.types import Decision
from simulator.config import SimulationConfig
from simulator.policies import build_policy
from simulator.replay import Replay, ReplayResult

WEEKS = 52
SEED = 11


class _Watched(Replay):
    """The replay, keeping the contexts of the decisions the feedback loop learns from."""

    seen: list[dict[str, object]]

    def _assigned(
        self, event_id: str, recommended: int, assigned: int, decision: Decision | None
    ) -> None:
        if decision is not None and recommended == assigned:
            self.seen.append(dict(decision.context))
        super()._assigned(event_id, recommended, assigned, decision)


@pytest.fixture(scope="module")
def run() -> tuple[ReplayResult, list[dict[str, object]]]:
    replay = _Watched(
        build_policy("uniform", seed=SEED),
        SimulationConfig(scale=0.05),
        weeks=WEEKS,
        seed=SEED,
        references=False,
        repeat_spells=True,
    )
    replay.seen = []
    return replay.run(), replay.seen


def test_share_back_within_a_year_matches_the_documented_rate(run):
    result, _ = run
    returns = result.returns
    assert returns is not None
    cfg = SimulationConfig()
    # domain.md 5.3: "about 40 % of people return within a year under sigma = 0.01 per week"
    assert 1 - (1 - cfg.separation(TargetGroup.DAGPENGE)) ** 52 == pytest.approx(0.40, abs=0.01)
    for group in TargetGroup:
        rows = returns[returns["target_group"] == group.value]
        n = len(rows)
        assert n >= 100 or group is TargetGroup.KONTANTHJAELP
        if n == 0:
            continue
        expected = 1 - (1 - cfg.separation(group)) ** 52
        share = float(((rows["spell_start"] - rows["job_start"]) <= 52).mean())
        tolerance = 4 * math.sqrt(expected * (1 - expected) / n)  # 4 binomial sd
        assert abs(share - expected) <= tolerance, (group, n, share, expected)
        assert (rows["spell_start"] > rows["job_start"]).all()


def test_returning_citizens_keep_their_arm_and_the_learner_sees_the_history(run):
    result, seen = run
    d = result.decisions
    serial = d["event_id"].str.rsplit("-", n=1).str[-1].astype(int)
    assert (d.groupby(serial)["group"].nunique() == 1).all()  # one arm per citizen
    returning = d[d["prior_spells"] > 0]
    assert len(returning) >= 20
    # every returner's earlier decision is in the log, in an earlier week
    first_week = d.groupby(serial)["week"].min()
    assert (returning["week"].to_numpy() > first_week[serial[returning.index]].to_numpy()).all()
    # the number of earlier spells is what the log shows (capped as the feature)
    earlier = d.groupby(serial).cumcount()
    assert (d["prior_spells"] <= earlier).all()
    # what the feedback loop learns from carries the history features
    with_history = [c for c in seen if "prior_spells" in c]
    assert with_history, "no followed decision of a returning citizen"
    for ctx in with_history:
        assert int(str(ctx["prior_spells"])) >= 1
        assert {"weeks_since_last_spell", "last_family"} <= set(ctx)
        assert not {"gender", "origin", "protected_gender", "protected_origin"} & set(ctx)
    assert np.mean([c.get("prior_spells", 0) != 0 for c in seen]) > 0


def test_repeated_spells_are_off_by_default():
    result = Replay(
        build_policy("uniform", seed=1), SimulationConfig(scale=0.01), weeks=3, seed=1
    ).run()
    assert result.returns is None and "prior_spells" not in result.decisions

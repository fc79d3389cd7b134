"""A learner improves over a 2-year replay (VW through the policy registry)."""

from __future__ import annotations

from simulator.config import SimulationConfig
from simulator.policies import build_policy
from simulator.replay import Replay


def test_vw_regret_falls_from_year_one_to_year_two() -> None:
    # 30 % of Copenhagen's inflow (~14,000 treatment decisions over 104 weeks). The per-year
    # mean regret has a sampling SE of about sd(0.06)/sqrt(7000) = 0.0007, well below the
    # 0.007-0.013 improvement seen for seeds 0-4 while building it.
    #
    # Outcomes settle at the horizon here (settle_jobs_early=False). Under the design's rule
    # (a job settles the reward at once) early positives run 26 weeks ahead of the zeros, which
    # inflates arms the learner has just started to favour; then VW's year-2 regret was lower in
    # only 4 of 5 seeds at this scale and 1 of 3 at full scale, so that variant is reported, not
    # asserted (see test below for what the early rule must still satisfy).
    config = SimulationConfig(scale=0.3, settle_jobs_early=False)
    policy = build_policy("vw", seed=0)
    result = Replay(policy, config, weeks=104, seed=0).run()
    d = result.decisions[result.decisions["group"] == "treatment"]
    year1 = d.loc[d["week"] < 52, "regret"].mean()
    year2 = d.loc[d["week"] >= 52, "regret"].mean()
    assert year2 < year1
    assert policy.n_updates > 5000


def test_vw_beats_uniform_in_true_value_under_the_design_rule() -> None:
    # With jobs settling at once, VW must still recommend better than uniform over 2 years
    # (both exact true values on the same simulated citizens; same seed, same population).
    config = SimulationConfig(scale=0.3)
    regrets = {}
    for name in ("vw", "uniform"):
        result = Replay(build_policy(name, seed=0), config, weeks=104, seed=0).run()
        d = result.decisions
        regrets[name] = d.loc[d["group"] == "treatment", "regret"].mean()
    assert regrets["vw"] < regrets["uniform"]

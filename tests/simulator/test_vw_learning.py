"""A learner improves over a 2-year replay (VW through the policy registry, family-level arms).

The full-catalog, Copenhagen-scale evidence is a benchmark (``bench/bench_learning.py``); these
tests keep the fast 11-arm option so the suite stays short.
"""

from __future__ import annotations

from simulator.config import SimulationConfig
from simulator.policies import build_policy
from simulator.replay import Replay

FAST = {"scale": 0.3, "offers_per_family": 1, "capacity_scale": 0.0}


def test_default_hazard_learner_regret_falls_from_year_one_to_year_two() -> None:
    # 30 % of Copenhagen's inflow (~14,000 treatment decisions over 104 weeks). The per-year
    # mean regret has a sampling SE of about sd(0.06)/sqrt(7000) = 0.0007, well below the
    # improvement a learner must show.
    policy = build_policy("vw", seed=0)
    result = Replay(policy, SimulationConfig(**FAST), weeks=104, seed=0).run()
    assert result.delay == "hazard"
    d = result.decisions[result.decisions["group"] == "treatment"]
    year1 = d.loc[d["week"] < 52, "regret"].mean()
    year2 = d.loc[d["week"] >= 52, "regret"].mean()
    assert year2 < year1
    assert policy.n_updates > 50_000  # citizen-weeks


def test_vw_beats_uniform_in_true_value() -> None:
    # Both exact true values on the same simulated citizens (same seed, same population).
    regrets = {}
    for name in ("vw", "uniform"):
        result = Replay(build_policy(name, seed=0), SimulationConfig(**FAST), weeks=104, seed=0)
        d = result.run().decisions
        regrets[name] = d.loc[d["group"] == "treatment", "regret"].mean()
    assert regrets["vw"] < regrets["uniform"]

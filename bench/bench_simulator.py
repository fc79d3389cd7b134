"""Wall time of a 1-year Copenhagen replay with the default learner, vs the uniform policy.

The full shipped catalog (330 offers, weekly seats), the default VW hazard learner with the
hazard delay strategy, reference policies and shown-option estimates included: exactly what
``nbi simulate run`` does. Target: under 60 s.

Both runs simulate the same population (same seed); the uniform run is the reference, so the
ratio is the learner's overhead. Citizen-weeks are decisions x horizon weeks of the outcome
model; truth cells are decisions x actions x horizon (exact ground truth computed per week).
"""

from __future__ import annotations

import time

from simulator.config import SimulationConfig
from simulator.policies import build_policy
from simulator.replay import Replay


def _replay(policy: str, config: SimulationConfig, weeks: int) -> dict[str, float]:
    replay = Replay(build_policy(policy, seed=0), config, weeks=weeks, seed=0)
    start = time.perf_counter()
    result = replay.run()
    seconds = time.perf_counter() - start
    n = len(result.decisions)
    k = len(result.action_ids)
    h = config.horizon_weeks
    return {
        "seconds": round(seconds, 3),
        "decisions": n,
        "learned": len(result.learn_log),
        "citizen_weeks_per_second": round(n * h / seconds),
        "truth_cells_per_second": round(n * k * h / seconds),
        "decisions_per_second": round(n / seconds),
    }


def run(quick: bool = False) -> dict[str, object]:
    scale = 0.1 if quick else 1.0
    config = SimulationConfig(scale=scale)
    weeks = 52
    vw = _replay("vw", config, weeks)
    uniform = _replay("uniform", config, weeks)
    out: dict[str, object] = {
        "scale": scale,
        "weeks": weeks,
        "spells_per_year": round(
            (config.dagpenge_per_year + config.kontanthjaelp_per_year) * scale
        ),
        "vw": vw,
        "uniform_reference": uniform,
        "ratio_vw_over_uniform_seconds": round(vw["seconds"] / uniform["seconds"], 2),
        "target_seconds": 60.0,
        "within_target": vw["seconds"] < 60.0,
    }
    print(f"{'policy':10} {'seconds':>8} {'decisions':>9} {'cit-wk/s':>10} {'decisions/s':>11}")
    for name, r in (("vw", vw), ("uniform", uniform)):
        print(
            f"{name:10} {r['seconds']:8.2f} {r['decisions']:9d} "
            f"{r['citizen_weeks_per_second']:10.0f} {r['decisions_per_second']:11.0f}"
        )
    print(f"vw / uniform wall time: {out['ratio_vw_over_uniform_seconds']}x")
    return out


if __name__ == "__main__":
    run()

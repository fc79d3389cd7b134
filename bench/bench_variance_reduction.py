"""Variance reduction of the trial's ITT with what a real analysis can observe.

Per seed: (1) a pre-trial period -- practice-as-usual logs (``simulator.logs``, other seed) --
fits the prognostic score (:mod:`offline_eval.prognostic`); (2) a simulated trial
(``simulator.replay``) analysed in information time (only decisions whose 26-week outcome is
known at the end, register lag 6 weeks); (3) the ITT's standard error and MDE
(``(z_0.975 + z_0.80) x SE``, the one convention of :mod:`offline_eval.power`) for the
unadjusted Neyman estimate, Lin on the pre-treatment case facts, Lin on the prognostic score
alone, and Lin on both. The estimates are also compared with the per-person true ITT.

``python -m bench.run_all variance_reduction [--quick]``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.stats import norm

from offline_eval import trial_data
from offline_eval.prognostic import CASE_FACTS, fit, r_squared
from offline_eval.rct import itt, lin_adjusted
from simulator.config import SimulationConfig
from simulator.logs import generate_logs
from simulator.policies import build_policy
from simulator.replay import Replay
from simulator.report import rct_summary

LAG = 6
Z = float(norm.ppf(0.975) + norm.ppf(0.8))
METHODS = ("unadjusted", "lin_case_facts", "lin_prognostic", "lin_both")


def one_seed(seed: int, *, scale: float, weeks: int, history: int) -> dict[str, Any]:
    """SE and MDE of each estimator on one simulated trial (information time)."""
    logs = generate_logs(history, logging_policy="practice", seed=10_000 + seed)
    model = fit(logs.frame, "reward")
    config = SimulationConfig(scale=scale, offers_per_family=1, lag_weeks=LAG)
    result = Replay(build_policy("uniform", seed=seed), config, weeks=weeks, seed=seed).run()
    rct = rct_summary(result, lag_weeks=LAG)
    d = result.decisions
    known = d[d["week"] <= rct["cutoff_week"]]
    y = known["employed"].to_numpy(dtype=float)
    t = (known["group"] == "treatment").to_numpy()
    score = model.score(known)
    facts = trial_data.covariates(known, CASE_FACTS)
    effects = {
        "unadjusted": itt(y, t),
        "lin_case_facts": lin_adjusted(y, t, facts),
        "lin_prognostic": lin_adjusted(y, t, score[:, None]),
        "lin_both": lin_adjusted(y, t, np.column_stack([score, facts])),
    }
    row: dict[str, Any] = {
        "seed": seed,
        "n": len(known),
        "pending": int(rct["pending_treatment"] + rct["pending_control"]),
        "true_itt": rct["true_itt"],
        "score_r2_control": r_squared(score[~t], y[~t]),
        "history_brier": model.brier_fit,
    }
    for name, e in effects.items():
        row[f"{name}_estimate"] = e.estimate
        row[f"{name}_se"] = e.se
        row[f"{name}_mde"] = Z * e.se
    return row


def run(quick: bool = False) -> dict[str, Any]:
    """Mean SE/MDE per estimator over several seeds, and the gain over unadjusted."""
    seeds = range(3) if quick else range(8)
    scale, weeks, history = (0.25, 52, 10_000) if quick else (0.5, 52, 20_000)
    rows = [one_seed(s, scale=scale, weeks=weeks, history=history) for s in seeds]
    summary: dict[str, Any] = {"seeds": len(rows), "scale": scale, "weeks": weeks}
    summary["n_mean"] = float(np.mean([r["n"] for r in rows]))
    summary["score_r2_control"] = float(np.mean([r["score_r2_control"] for r in rows]))
    base = float(np.mean([r["unadjusted_se"] for r in rows]))
    print(f"{len(rows)} seeds, ~{summary['n_mean']:.0f} known outcomes per trial")
    print(
        f"{'estimator':16} {'mean SE':>9} {'MDE pp':>8} {'vs unadj':>9} {'n equiv':>8} "
        f"{'bias':>8} {'RMSE':>8}"
    )
    for name in METHODS:
        se = float(np.mean([r[f"{name}_se"] for r in rows]))
        err = np.array([r[f"{name}_estimate"] - r["true_itt"] for r in rows])
        stats = {
            "se": se,
            "mde": Z * se,
            "se_ratio": se / base,
            "sample_size_equivalent": (base / se) ** 2,
            "bias_vs_true_itt": float(err.mean()),
            "rmse_vs_true_itt": float(math.sqrt(float((err**2).mean()))),
        }
        summary[name] = stats
        print(
            f"{name:16} {se:9.5f} {stats['mde'] * 100:8.2f} {stats['se_ratio']:9.3f} "
            f"{stats['sample_size_equivalent']:8.3f} {stats['bias_vs_true_itt']:+8.4f} "
            f"{stats['rmse_vs_true_itt']:8.4f}"
        )
    summary["per_seed"] = rows
    return summary


if __name__ == "__main__":
    run(quick=True)

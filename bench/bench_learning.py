"""Statistical performance of the learner at the product's real size (issue 8).

Copenhagen volumes (41,000 spells a year), the full shipped catalog (330 offers, weekly seats
shared by both arms), 26-week horizon, caseworker compliance 0.6, 20 % control, two simulated
years, several seeds, every delay strategy (``hazard``, ``horizon``, ``at_once``). Per quarter:
the TRUE value of the served policy (expected 26-week employment if every citizen received
the offer it suggests) beside practice as usual, uniform, the best non-contextual policy, the
observable oracle and the oracle, and the share of the observable oracle's gain over practice
the learner captures. Also: calibration of the shown estimates after year 1, and the trial's
ITT at the end of year 2 counting only outcomes known by then (horizon plus register lag).

``python -m bench.bench_learning [--quick] [--seeds 1,2,3,4,5] [--delays hazard,horizon]``
"""

from __future__ import annotations

import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bandit.jsonsafe import dumps

DELAYS = ("hazard", "horizon", "at_once")
SEEDS = (1, 2, 3, 4, 5)
WEEKS = 104
REGISTER_LAG_WEEKS = 6  # domain.md 5.3: the week-26 outcome reaches the registers 4-8 weeks late
HERE = Path(__file__).parent


def known_itt(decisions: pd.DataFrame, *, weeks: int, horizon: int, lag: int) -> dict[str, float]:
    """Treatment minus control employment within the horizon, counting only decisions whose
    outcome is known by the end of week ``weeks`` (decided at least ``horizon + lag`` weeks
    earlier); Neyman standard error, two-sided p-value, and the true ITT of the same rows."""
    d = decisions[decisions["week"] + horizon + lag <= weeks]
    t, c = d[d["group"] == "treatment"], d[d["group"] == "control"]
    if not len(t) or not len(c):
        return {"n": float(len(d))}
    p_t, p_c = float(t["employed"].mean()), float(c["employed"].mean())
    se = math.sqrt(p_t * (1 - p_t) / len(t) + p_c * (1 - p_c) / len(c))
    diff = p_t - p_c
    return {
        "n_treatment": float(len(t)),
        "n_control": float(len(c)),
        "itt": diff,
        "se": se,
        "p_value": math.erfc(abs(diff / se) / math.sqrt(2.0)) if se > 0 else 1.0,
        "true_itt": float(t["p_assigned"].mean() - c["p_assigned"].mean()),
        "mde": 2.80 * math.sqrt(p_c * (1 - p_c) * (1 / len(c) + 1 / len(t))),
    }


def one_run(delay: str, seed: int, scale: float, weeks: int, params: str = "{}") -> dict[str, Any]:
    """One replay; returns its quarterly value table and diagnostics (JSON-ready).

    ``params``: JSON of VW parameters overriding the defaults (for tuning runs).
    """
    from bandit.policies import make_policy
    from simulator.config import SimulationConfig
    from simulator.policies import build_policy
    from simulator.replay import Replay
    from simulator.report import calibration, quarterly_values, shown_calibration

    config = SimulationConfig(scale=scale)
    overrides = json.loads(params)
    if overrides:
        target = "hazard" if delay == "hazard" else "reward"
        policy = make_policy("vw", seed=seed, target=target, **overrides)
    else:
        policy = build_policy("vw", seed=seed, delay=delay)
    start = time.perf_counter()
    result = Replay(policy, config, weeks=weeks, seed=seed, delay=delay).run()
    seconds = time.perf_counter() - start
    table = quarterly_values(result)
    d = result.decisions
    return {
        "delay": delay,
        "seed": seed,
        "seconds": round(seconds, 1),
        "quarters": table.round(5).to_dict(orient="records"),
        "calibration_after_year_1": calibration(result, from_week=52),
        "shown_options_after_year_1": shown_calibration(result, from_week=52),
        "itt_known_at_end": known_itt(
            d, weeks=weeks, horizon=config.horizon_weeks, lag=REGISTER_LAG_WEEKS
        ),
    }


def _verdict(run: dict[str, Any]) -> dict[str, Any]:
    q = pd.DataFrame(run["quarters"])
    last = q.iloc[-1]
    year1 = q[q["quarter"] < 4]["policy"].mean()  # noqa: PLR2004
    year2 = q[q["quarter"] >= 4]["policy"].mean()  # noqa: PLR2004
    return {
        "share_end": float(last["share_of_gain"]),
        "above_best_noncontextual_end": bool(last["policy"] > last["best_noncontextual"]),
        "year2_above_year1": bool(year2 > year1),
        "year1_value": float(year1),
        "year2_value": float(year2),
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per delay strategy: mean table over seeds and how many seeds meet each criterion."""
    out: dict[str, Any] = {}
    for delay in sorted({r["delay"] for r in runs}):
        mine = [r for r in runs if r["delay"] == delay]
        tables = pd.concat([pd.DataFrame(r["quarters"]) for r in mine])
        mean = tables.groupby("quarter").mean(numeric_only=True)
        verdicts = [_verdict(r) for r in mine]
        itts = [r["itt_known_at_end"] for r in mine]
        out[delay] = {
            "seeds": [r["seed"] for r in mine],
            "mean_by_quarter": mean.round(4).reset_index().to_dict(orient="records"),
            "share_by_quarter_per_seed": [
                [round(float(x), 3) for x in pd.DataFrame(r["quarters"])["share_of_gain"]]
                for r in mine
            ],
            "seeds_share_end_at_least_half": sum(v["share_end"] >= 0.5 for v in verdicts),  # noqa: PLR2004
            "seeds_above_best_noncontextual_end": sum(
                v["above_best_noncontextual_end"] for v in verdicts
            ),
            "seeds_year2_above_year1": sum(v["year2_above_year1"] for v in verdicts),
            "observable_oracle_minus_best_noncontextual": float(
                (mean["observable_oracle"] - mean["best_noncontextual"]).mean()
            ),
            "calibration_error_after_year_1": [
                r["calibration_after_year_1"].get("calibration_error") for r in mine
            ],
            "shown_options_after_year_1": [r.get("shown_options_after_year_1") for r in mine],
            "itt_significant_seeds": sum(i.get("p_value", 1.0) < 0.05 for i in itts),  # noqa: PLR2004
            "itt": itts,
            "seconds": [r["seconds"] for r in mine],
        }
    return out


def _print(summary: dict[str, Any]) -> None:
    cols = ["quarter", "policy", "practice", "uniform", "best_noncontextual"]
    cols += ["observable_oracle", "oracle", "share_of_gain"]
    for delay, s in summary.items():
        print(f"\n--- delay strategy: {delay} (seeds {s['seeds']}) ---")
        print(pd.DataFrame(s["mean_by_quarter"])[cols].to_string(index=False))
        print("share of the observable oracle's gain per seed:", s["share_by_quarter_per_seed"])
        n = len(s["seeds"])
        print(
            f">= 50 % of the gain at the end: {s['seeds_share_end_at_least_half']}/{n}; "
            f"above best non-contextual: {s['seeds_above_best_noncontextual_end']}/{n}; "
            f"year 2 > year 1: {s['seeds_year2_above_year1']}/{n}; "
            f"ITT significant: {s['itt_significant_seeds']}/{n}"
        )


def _plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(summary), figsize=(5 * len(summary), 4), squeeze=False)
    for ax, (delay, s) in zip(axes[0], summary.items(), strict=True):
        table = pd.DataFrame(s["mean_by_quarter"])
        for name, style in (
            ("oracle", ":"),
            ("observable_oracle", "--"),
            ("best_noncontextual", "-."),
            ("practice", "-"),
            ("uniform", "-"),
            ("policy", "-"),
        ):
            ax.plot(
                table["quarter"] + 1,
                table[name],
                style,
                label=name,
                lw=2.5 if name == "policy" else 1.2,
            )
        ax.set_title(f"delay: {delay}")
        ax.set_xlabel("quarter")
        ax.set_ylabel("true 26-week employment")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(
    quick: bool = False,
    *,
    seeds: tuple[int, ...] = SEEDS,
    delays: tuple[str, ...] = DELAYS,
    workers: int = 2,
    params: str = "{}",
) -> dict[str, object]:
    """Run every (delay, seed) replay, two at a time; print and return the summary."""
    scale, weeks = (0.25, 52) if quick else (1.0, WEEKS)
    jobs = [(delay, seed, scale, weeks, params) for delay in delays for seed in seeds]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        runs = list(pool.map(one_run, *zip(*jobs, strict=True)))
    summary = summarise(runs)
    _print(summary)
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    _plot(summary, out_dir / "learning.png")
    return {"scale": scale, "weeks": weeks, "summary": summary, "runs": runs}


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    seeds, delays, params = SEEDS, DELAYS, "{}"
    for arg in argv:
        if arg.startswith("--params="):
            params = arg.split("=", 1)[1]
        if arg.startswith("--seeds="):
            seeds = tuple(int(s) for s in arg.split("=", 1)[1].split(","))
        if arg.startswith("--delays="):
            delays = tuple(arg.split("=", 1)[1].split(","))
    result = run(quick, seeds=seeds, delays=delays, params=params)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "bench_learning.json").write_text(dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    raise SystemExit(main(sys.argv[1:]))

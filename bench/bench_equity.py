"""Equity guardrail (issue 13, item 1): who gets the scarce seats, and what it costs.

The simulator at Copenhagen volume, the full shipped catalog with weekly seats shared by both
arms, the VW hazard learner, two years, five seeds; once without a guardrail and once per
scarce-seat reserve share (:mod:`bandit.equity`). Per configuration, mean over seeds (TRUE
expected values from the simulator, not realised outcomes, so the figures are not blurred by
outcome noise):

* overall effect: the ITT, mean TRUE P(job within 26 weeks) of the assignment, treatment
  minus control, in percentage points (all 104 weeks, and year 2 alone);
* the same per *need quartile* (quartile of the TRUE employment probability under practice as
  usual, ``p_practice``; ``q1`` = lowest = highest need) and per gender and origin;
* seat shares of the scarce families (private wage subsidy, private internship) in the
  recommender arm per need quartile and protected group, beside the group's share of the arm
  and its share of "those who would gain most": the citizens of the arm with the largest TRUE
  gain of their best legal scarce offer over their best legal other offer, as many as the arm
  received scarce seats;
* net value in DKK per citizen: control minus treatment mean TRUE public cost (expected
  benefit within the horizon plus programme cost), as ``offline_eval/cost_benefit.py`` but on
  the truth.

``python -m bench.bench_equity [--quick] [--seeds=1,2] [--reserves=0,0.25]
[--scenarios=full,tight] [--workers=2]``; ``--quick``: quarter scale, one year, two seeds;
``--from-runs=bench/results/bench_equity_runs_full.jsonl`` prints the table of the runs saved
so far (each run is appended there as it ends).
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bandit.jsonsafe import dumps

SEEDS = (1, 2, 3, 4, 5)
WEEKS = 104
RESERVES: tuple[float, ...] = (0.0, 0.25)
"""0 = no guardrail (the shipped default); 0.25 = the reserve evaluated (``NBI_EQUITY_RESERVE_SHARE``)."""
SCARCE = ("private_wage_subsidy", "private_internship")
DIMENSIONS = ("need_quartile", "gender", "origin")
SCENARIOS: dict[str, tuple[float, int]] = {
    "full": (1.0, 0),
    "tight": (0.25, 1),
}
"""(capacity_scale, offers_per_family) of each scenario. ``full``: the shipped catalog with its
seats (the issue's table). ``tight``: one offer per family standing for the family's seats at a
quarter of the capacity (about 24 wage-subsidy and 36 internship seats a week), where scarce
seats run out; the full catalog cannot show this, as every offer keeps at least one seat."""
HERE = Path(__file__).parent


def _label(reserve: float) -> str:
    return "none" if reserve == 0 else f"reserve_{reserve:g}"


def _gains(replay: Any, prepared: Any, i: int) -> float:
    """TRUE gain of citizen ``i``'s best legal scarce offer over the best legal other offer."""
    legal = prepared.eligible[i]
    p = prepared.p_job[i]
    scarce = replay.scarce_mask & legal
    other = ~replay.scarce_mask & legal
    if not scarce.any() or not other.any():
        return float("nan")
    return float(p[scarce].max() - p[other].max())


def _recording_gate() -> type:
    from bandit.equity import EquityGate

    class RecordingGate(EquityGate):
        """The gate, logging each decision's priority flag under the replay's current event."""

        log: dict[str, bool]
        replay: Any

        def is_priority(self, need_score: float) -> bool:
            flag = EquityGate.is_priority(self, need_score)
            self.log[self.replay.current_event] = flag
            return flag

    return RecordingGate


def one_run(
    reserve: float, seed: int, scale: float, weeks: int, scenario: str = "full"
) -> dict[str, Any]:
    """One replay; returns the per-decision columns the table needs (JSON-ready)."""
    from simulator.config import SimulationConfig
    from simulator.policies import build_policy
    from simulator.replay import Replay

    RecordingGate = _recording_gate()  # noqa: N806 (a class)

    class GainReplay(Replay):
        """The replay, recording each citizen's TRUE gain from a scarce seat (legal offers)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.gain: dict[str, float] = {}
            self.scarce_mask = np.array([a.features.get("family") in SCARCE for a in self.actions])

            self.priority: dict[str, bool] = {}
            self.current_event = ""
            if self.equity is not None:  # record who the gate makes a priority citizen
                g = self.equity
                recording: Any = RecordingGate(g.config, g.reserve, g.members, g.baseline)
                recording.log, recording.replay = self.priority, self
                self.equity = recording

        def _recommend(self, prepared, i, available, seats_left, event_id):  # type: ignore[no-untyped-def]
            self.gain[event_id] = _gains(self, prepared, i)
            self.current_event = event_id
            return super()._recommend(prepared, i, available, seats_left, event_id)

    capacity_scale, offers_per_family = SCENARIOS[scenario]
    config = SimulationConfig(
        scale=scale,
        equity_reserve_share=reserve,
        capacity_scale=capacity_scale,
        offers_per_family=offers_per_family,
    )
    policy = build_policy("vw", seed=seed, delay="hazard")
    replay = GainReplay(policy, config, weeks=weeks, seed=seed, delay="hazard", references=False)
    start = time.perf_counter()
    result = replay.run()
    seconds = time.perf_counter() - start
    d = result.decisions
    d["gain_scarce"] = d["event_id"].map(replay.gain)
    d["priority"] = d["event_id"].map(replay.priority)
    return {
        "scenario": scenario,
        "reserve": reserve,
        "seed": seed,
        "seconds": round(seconds, 1),
        **measures(d),
    }


def _itt(d: pd.DataFrame) -> float:
    t, c = d[d["group"] == "treatment"], d[d["group"] == "control"]
    if not len(t) or not len(c):
        return float("nan")
    return 100.0 * float(t["p_assigned"].mean() - c["p_assigned"].mean())


def _net_value(d: pd.DataFrame) -> float:
    t, c = d[d["group"] == "treatment"], d[d["group"] == "control"]
    return float(c["true_cost_dkk"].mean() - t["true_cost_dkk"].mean())


def measures(d: pd.DataFrame) -> dict[str, Any]:
    """The table's figures for one run's decisions (see the module docstring)."""
    d = d.copy()
    d["need_quartile"] = pd.qcut(
        d["p_practice"].rank(method="first"), 4, labels=["q1", "q2", "q3", "q4"]
    ).astype(str)
    year2 = d[d["week"] >= 52]  # noqa: PLR2004
    out: dict[str, Any] = {
        "n": len(d),
        "itt_pp": _itt(d),
        "itt_pp_year2": _itt(year2) if len(year2) else float("nan"),
        "net_value_dkk": _net_value(d),
        "control_employment": float(d.loc[d["group"] == "control", "p_assigned"].mean()),
        "effect_pp": {},
        "effect_pp_year2": {},
        "scarce_share": {},
        "arm_share": {},
        "gain_most_share": {},
    }
    t = d[d["group"] == "treatment"]
    scarce = t["assigned_family"].isin(SCARCE)
    n_seats = int(scarce.sum())
    cut = t["gain_scarce"].nlargest(n_seats).min() if n_seats else np.inf
    gain_most = t["gain_scarce"] >= cut
    if t["priority"].notna().any():  # how well the model's need score finds the truth's q1
        flagged = t["priority"] == True  # noqa: E712 (NaN-safe)
        out["priority_share"] = float(flagged.mean())
        out["q1_among_priority"] = float((t.loc[flagged, "need_quartile"] == "q1").mean())
        out["priority_among_q1"] = float(flagged[t["need_quartile"] == "q1"].mean())
    out["scarce_seats_treatment"] = n_seats
    out["scarce_rate_treatment"] = float(scarce.mean())
    for dim in DIMENSIONS:
        for g, rows in d.groupby(dim):
            key = f"{dim}={g}"
            out["effect_pp"][key] = _itt(rows)
            y2 = rows[rows["week"] >= 52]  # noqa: PLR2004
            out["effect_pp_year2"][key] = _itt(y2) if len(y2) else float("nan")
            in_t = t[dim] == g
            out["scarce_share"][key] = float((scarce & in_t).sum() / max(n_seats, 1))
            out["arm_share"][key] = float(in_t.mean())
            out["gain_most_share"][key] = float((gain_most & in_t).sum() / max(gain_most.sum(), 1))
    return out


def _num(x: object) -> float:
    """A figure as a float (a NaN saved as JSON null reads back as ``None``)."""
    return float("nan") if x is None else float(x)  # type: ignore[arg-type]


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean (and min, max over seeds) of every figure, per configuration."""
    out: dict[str, Any] = {}
    for scenario, reserve in sorted({(r["scenario"], r["reserve"]) for r in runs}):
        mine = [r for r in runs if r["reserve"] == reserve and r["scenario"] == scenario]
        entry: dict[str, Any] = {"seeds": [r["seed"] for r in mine]}
        for key in ("itt_pp", "itt_pp_year2", "net_value_dkk", "scarce_rate_treatment"):
            vals = np.array([_num(r[key]) for r in mine], dtype=float)
            entry[key] = {
                "mean": float(vals.mean()),
                "min": float(vals.min()),
                "max": float(vals.max()),
            }
        for block in (
            "effect_pp",
            "effect_pp_year2",
            "scarce_share",
            "arm_share",
            "gain_most_share",
        ):
            keys = sorted({k for r in mine for k in r[block]})
            entry[block] = {
                k: float(np.nanmean([_num(r[block].get(k)) for r in mine])) for k in keys
            }
        for key in ("priority_share", "q1_among_priority", "priority_among_q1"):
            vals = np.array([r[key] for r in mine if key in r], dtype=float)
            if len(vals):
                entry[key] = float(vals.mean())
        entry["q1_effect_per_seed"] = [r["effect_pp"].get("need_quartile=q1") for r in mine]
        entry["seconds"] = [r["seconds"] for r in mine]
        out[f"{scenario}/{_label(reserve)}"] = entry
    return out


def table(summary: dict[str, Any]) -> pd.DataFrame:
    """One row per figure, one column per configuration."""
    rows: dict[str, dict[str, float]] = {}
    for label, s in summary.items():
        col: dict[str, float] = {
            "ITT overall (pp)": s["itt_pp"]["mean"],
            "ITT overall, year 2 (pp)": s["itt_pp_year2"]["mean"],
            "net value per citizen (DKK)": s["net_value_dkk"]["mean"],
            "scarce seats per treated citizen": s["scarce_rate_treatment"]["mean"],
        }
        for key, name in (
            ("priority_share", "priority citizens (share of the arm)"),
            ("q1_among_priority", "  of them in need quartile q1"),
            ("priority_among_q1", "  share of q1 who are priority"),
        ):
            col[name] = s.get(key, float("nan"))
        for k, v in s["effect_pp"].items():
            col[f"effect {k} (pp)"] = v
        for k, v in s["effect_pp_year2"].items():
            if k.startswith("need_quartile"):
                col[f"effect {k}, year 2 (pp)"] = v
        for k, v in s["scarce_share"].items():
            col[f"scarce share {k}"] = v
            col[f"  arm share {k}"] = s["arm_share"][k]
            col[f"  gain-most share {k}"] = s["gain_most_share"][k]
        rows[label] = col
    return pd.DataFrame(rows)


def run(
    quick: bool = False,
    *,
    seeds: tuple[int, ...] | None = None,
    reserves: tuple[float, ...] = RESERVES,
    scenarios: tuple[str, ...] = tuple(SCENARIOS),
    workers: int = 2,
) -> dict[str, object]:
    """Run every (scenario, reserve, seed) replay, ``workers`` at a time; print and return."""
    scale, weeks = (0.25, 52) if quick else (1.0, WEEKS)
    seeds = seeds or ((1, 2) if quick else SEEDS)
    jobs = [(r, s, scale, weeks, c) for c in scenarios for s in seeds for r in reserves]
    partial = (
        HERE
        / "results"
        / f"bench_equity_runs{'_quick' if quick else ''}_{'_'.join(scenarios)}.jsonl"
    )
    partial.parent.mkdir(exist_ok=True)
    partial.write_text("")
    runs: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(one_run, *job) for job in jobs]
        for future in as_completed(futures):  # each run is saved as soon as it ends
            runs.append(future.result())
            with partial.open("a") as f:
                f.write(dumps(runs[-1], default=str) + "\n")
    summary = summarise(runs)
    frame = table(summary)
    with pd.option_context("display.max_rows", 200, "display.width", 160):
        print(f"scale {scale}, {weeks} weeks, seeds {list(seeds)}, scenarios {SCENARIOS}")
        print(frame.round(4).to_string())
        for label, s in summary.items():
            print(f"{label}: q1 effect per seed {np.round(s['q1_effect_per_seed'], 2).tolist()}")
    return {
        "scale": scale,
        "weeks": weeks,
        "seeds": list(seeds),
        "summary": summary,
        "table": frame.round(5).to_dict(),
        "runs": runs,
    }


def from_runs(path: Path) -> dict[str, object]:
    """Summarise the runs saved so far (``bench_equity_runs*.jsonl``, one JSON per line)."""
    runs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    summary = summarise(runs)
    frame = table(summary)
    with pd.option_context("display.max_rows", 200, "display.width", 160):
        print(f"{len(runs)} runs from {path.name}")
        print(frame.round(4).to_string())
    return {"summary": summary, "table": frame.round(5).to_dict(), "runs": runs}


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    seeds: tuple[int, ...] | None = None
    reserves = RESERVES
    scenarios = tuple(SCENARIOS)
    workers = 2
    for arg in argv:
        if arg.startswith("--from-runs="):
            path = Path(arg.split("=", 1)[1])
            result = from_runs(path)
            path.with_suffix(".summary.json").write_text(dumps(result, indent=2, default=str))
            return 0
        if arg.startswith("--workers="):
            workers = int(arg.split("=", 1)[1])
        if arg.startswith("--scenarios="):
            scenarios = tuple(arg.split("=", 1)[1].split(","))
        if arg.startswith("--seeds="):
            seeds = tuple(int(s) for s in arg.split("=", 1)[1].split(","))
        if arg.startswith("--reserves="):
            reserves = tuple(float(s) for s in arg.split("=", 1)[1].split(","))
    result = run(quick, seeds=seeds, reserves=reserves, scenarios=scenarios, workers=workers)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    name = f"bench_equity{'_quick' if quick else ''}.json"
    if scenarios != tuple(SCENARIOS):
        name = name.replace(".json", f"_{'_'.join(scenarios)}.json")
    (out / name).write_text(dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    raise SystemExit(main(sys.argv[1:]))

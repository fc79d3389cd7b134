"""Learning policies: choose+learn throughput and choose latency vs bare VW / bare river.

For 10, 50 and 300 eligible actions:

* ``VWPolicy`` (squarecb, the default) through the full policy API (validation, formatting with
  the action-line cache, pmf, floor, deterministic sampling, Decision, learn bookkeeping)
  against a bare ``vowpalwabbit.Workspace("--cb_explore_adf --squarecb -q ca")`` doing predict
  + learn on PRE-BUILT example strings (no formatting at all) in the same run, twice: through
  pyvw's public ``predict``/``learn`` and through pylibvw directly (the fastest way to drive
  VW from Python, which our adapter uses);
* ``RiverPolicy`` (epsilon: one model; thompson: 10 bootstrap members) against a bare river
  ``LogisticRegression`` predicting every action and learning one, on PRE-BUILT feature dicts.

Ratios are ours / reference per round (choose + learn) and for choose latency (p50, p99).
``python -m bench.run_all policies [--quick]``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bandit.catalog import default_catalog
from bandit.context import CitizenContext
from bandit.policies.base import Policy
from bandit.policies.river_policy import RiverPolicy
from bandit.policies.vw_policy import VWPolicy
from bandit.types import Action
from bandit.vw.examples import ActionLineCache, build_example, format_shared

SIZES = (10, 50, 300)
WARMUP = 30


def _contexts(n: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    sectors = ("construction", "it", "retail", "health_care", "transport")
    out = []
    for _ in range(n):
        ctx = CitizenContext.from_mapping(
            {
                "target_group": "dagpenge",
                "age": int(rng.integers(18, 66)),
                "education": "vocational",
                "weeks_unemployed": int(rng.integers(0, 80)),
                "benefit_history_weeks": int(rng.integers(0, 100)),
                "last_sector": sectors[int(rng.integers(0, len(sectors)))],
                "labour_demand_index": float(np.round(rng.uniform(0.2, 3.0), 2)),
                "cv_tokens": ("welding", "forklift")[: int(rng.integers(0, 3))],
            }
        )
        out.append(dict(ctx.features()))
    return out


def _actions(k: int) -> list[Action]:
    cat = default_catalog()
    step = max(1, len(cat) // k)
    return [cat[i].as_action() for i in range(0, step * k, step)][:k]


def _stats(choose_ns: list[int], round_ns: list[int]) -> dict[str, float]:
    c = np.asarray(choose_ns) / 1e3
    r = np.asarray(round_ns) / 1e3
    return {
        "rounds_per_s": round(1e6 / float(r.mean()), 1),
        "round_us_mean": round(float(r.mean()), 1),
        "choose_us_p50": round(float(np.percentile(c, 50)), 1),
        "choose_us_p99": round(float(np.percentile(c, 99)), 1),
    }


def _time_policy(
    policy: Policy, ctxs: list[dict[str, Any]], actions: list[Action], n: int
) -> dict[str, float]:
    rewards = np.random.default_rng(1).random(n + WARMUP) < 0.3
    choose_ns, round_ns = [], []
    for t in range(n + WARMUP):
        ctx = ctxs[t % len(ctxs)]
        t0 = time.perf_counter_ns()
        d = policy.choose(ctx, actions, event_id=f"b{t}")
        t1 = time.perf_counter_ns()
        policy.learn(d, float(rewards[t]))
        t2 = time.perf_counter_ns()
        if t >= WARMUP:
            choose_ns.append(t1 - t0)
            round_ns.append(t2 - t0)
    return _stats(choose_ns, round_ns)


def _time_raw_vw(ctxs: list[dict[str, Any]], actions: list[Action], n: int) -> dict[str, float]:
    """Bare VW through pyvw's public ``Workspace.predict``/``learn`` API."""
    return _time_bare_vw(ctxs, actions, n, direct=False)


def _time_raw_vw_direct(
    ctxs: list[dict[str, Any]], actions: list[Action], n: int
) -> dict[str, float]:
    """Bare VW through pylibvw directly (parse, predict_multi/learn_multi, finish): the
    fastest way to drive VW from Python, and the path our adapter uses."""
    return _time_bare_vw(ctxs, actions, n, direct=True)


def _time_bare_vw(
    ctxs: list[dict[str, Any]], actions: list[Action], n: int, *, direct: bool
) -> dict[str, float]:
    import pylibvw
    from vowpalwabbit import Workspace

    k = len(actions)
    rng = np.random.default_rng(1)
    rewards = rng.random(n + WARMUP) < 0.3
    chosen = rng.integers(0, k, size=n + WARMUP)
    cache = ActionLineCache()
    lines = cache.lines(actions)
    shared = [format_shared(c) for c in ctxs]
    plain = [build_example(s, lines) for s in shared]
    labelled = [
        build_example(
            shared[t % len(ctxs)], lines, label=(int(chosen[t]), float(rewards[t]), 1 / k)
        )
        for t in range(n + WARMUP)
    ]
    choose_ns, round_ns = [], []
    lib = pylibvw.vw

    def predict(ws: Any, ex: list[str]) -> None:
        if not direct:
            ws.predict(ex)
            return
        ecs = ws._parse("\n".join(ex))
        lib.predict_multi(ws, ecs)
        ecs[0].get_action_scores()
        lib._finish_example_multi_ex(ws, ecs)

    def learn(ws: Any, ex: list[str]) -> None:
        if not direct:
            ws.learn(ex)
            return
        ecs = ws._parse("\n".join(ex))
        lib.learn_multi(ws, ecs)
        lib._finish_example_multi_ex(ws, ecs)

    with Workspace("--cb_explore_adf --squarecb --cb_type mtr -q ca --quiet") as ws:
        for t in range(n + WARMUP):
            t0 = time.perf_counter_ns()
            predict(ws, plain[t % len(ctxs)])
            t1 = time.perf_counter_ns()
            learn(ws, labelled[t])
            t2 = time.perf_counter_ns()
            if t >= WARMUP:
                choose_ns.append(t1 - t0)
                round_ns.append(t2 - t0)
    return _stats(choose_ns, round_ns)


def _time_raw_river(ctxs: list[dict[str, Any]], actions: list[Action], n: int) -> dict[str, float]:
    from river import linear_model, optim

    k = len(actions)
    policy = RiverPolicy(exploration="epsilon")
    rows = [policy._rows(c, actions) for c in ctxs]  # pre-built feature dicts, same encoding
    rng = np.random.default_rng(1)
    rewards = rng.random(n + WARMUP) < 0.3
    chosen = rng.integers(0, k, size=n + WARMUP)
    model = linear_model.LogisticRegression(optimizer=optim.SGD(0.1), intercept_lr=0.1)
    choose_ns, round_ns = [], []
    for t in range(n + WARMUP):
        xs = rows[t % len(ctxs)]
        t0 = time.perf_counter_ns()
        [model.predict_proba_one(x)[True] for x in xs]
        t1 = time.perf_counter_ns()
        model.learn_one(xs[int(chosen[t])], bool(rewards[t]))
        t2 = time.perf_counter_ns()
        if t >= WARMUP:
            choose_ns.append(t1 - t0)
            round_ns.append(t2 - t0)
    return _stats(choose_ns, round_ns)


def _ratio(ours: dict[str, float], ref: dict[str, float]) -> dict[str, float]:
    return {
        "round_cost_ratio": round(ours["round_us_mean"] / ref["round_us_mean"], 2),
        "choose_p50_ratio": round(ours["choose_us_p50"] / ref["choose_us_p50"], 2),
        "choose_p99_ratio": round(ours["choose_us_p99"] / ref["choose_us_p99"], 2),
    }


def _section(
    title: str,
    make: Callable[[], Policy],
    reference: Callable[[list[dict[str, Any]], list[Action], int], dict[str, float]],
    rounds: dict[int, int],
    ctxs: list[dict[str, Any]],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in SIZES:
        actions = _actions(k)
        ref = reference(ctxs, actions, rounds[k])
        ours = _time_policy(make(), ctxs, actions, rounds[k])
        out[str(k)] = {"rounds": rounds[k], "ours": ours, "reference": ref, **_ratio(ours, ref)}
        print(
            f"{title:<18} K={k:<4} ours {ours['rounds_per_s']:>8.0f} r/s "
            f"p50 {ours['choose_us_p50']:>8.1f}us p99 {ours['choose_us_p99']:>8.1f}us | "
            f"ref {ref['rounds_per_s']:>8.0f} r/s p50 {ref['choose_us_p50']:>8.1f}us "
            f"p99 {ref['choose_us_p99']:>8.1f}us | cost x{out[str(k)]['round_cost_ratio']:.2f}",
            flush=True,
        )
    return out


def run(quick: bool = False) -> dict[str, object]:
    """Measure VWPolicy and RiverPolicy against bare VW / bare river in the same run."""
    ctxs = _contexts(200, seed=0)
    vw_rounds = {10: 300, 50: 300, 300: 100} if quick else {10: 3000, 50: 2000, 300: 600}
    river_rounds = {10: 200, 50: 100, 300: 30} if quick else {10: 1500, 50: 600, 300: 150}
    result: dict[str, object] = {
        "quick": quick,
        "vw_squarecb_vs_raw_vw": _section("vw squarecb", VWPolicy, _time_raw_vw, vw_rounds, ctxs),
        "vw_squarecb_vs_direct_pylibvw": _section(
            "vw vs pylibvw", VWPolicy, _time_raw_vw_direct, vw_rounds, ctxs
        ),
        "river_epsilon_vs_raw_river": _section(
            "river epsilon",
            lambda: RiverPolicy(exploration="epsilon"),
            _time_raw_river,
            river_rounds,
            ctxs,
        ),
        "river_thompson10_vs_raw_river": _section(
            "river thompson10", RiverPolicy, _time_raw_river, river_rounds, ctxs
        ),
    }
    return result

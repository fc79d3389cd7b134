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

SIZES = (10, 50, 330)
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


def _hazard_serving(ctxs: list[dict[str, Any]], n: int) -> dict[str, Any]:
    """The default learner as the service runs it, K = 330 (the shipped catalog).

    Serving: ``choose`` on a trained, non-learning snapshot (time table cached) against bare
    pylibvw predicting the same 330-line example. Learning: one citizen-week
    (``learn_at_risk``) against bare pylibvw learning the same single-line example.
    """
    import pylibvw

    actions = [item.as_action() for item in default_catalog()]
    policy = VWPolicy(target="hazard", seed=1)
    rng = np.random.default_rng(2)
    for t in range(2000):
        ctx = ctxs[t % len(ctxs)]
        for week in range(3):
            policy.learn_at_risk(ctx, actions[t % len(actions)], week, job=rng.random() < 0.2)
    serving = VWPolicy.from_bytes(policy.to_bytes())
    ws = serving._scorer._ws  # noqa: SLF001 (the reference drives the same workspace bare)
    lib = pylibvw.vw
    examples = [serving._example(c, actions) for c in ctxs]  # noqa: SLF001
    ours_ns, ref_ns = [], []
    serving.choose(ctxs[0], actions, event_id="warm")
    for t in range(n):
        ctx = ctxs[t % len(ctxs)]
        t0 = time.perf_counter_ns()
        serving.choose(ctx, actions, event_id=f"h{t}")
        t1 = time.perf_counter_ns()
        ecs = ws._parse("\n".join(examples[t % len(ctxs)]))  # noqa: SLF001
        lib.predict_multi(ws, ecs)
        ecs[0].get_action_scores()
        lib._finish_example_multi_ex(ws, ecs)  # noqa: SLF001
        t2 = time.perf_counter_ns()
        ours_ns.append(t1 - t0)
        ref_ns.append(t2 - t1)
    learner = VWPolicy(target="hazard", seed=1)
    lws = learner._scorer._ws  # noqa: SLF001
    line = learner._lines.line(actions[7])  # noqa: SLF001
    learn_ours, learn_ref = [], []
    for t in range(n * 10):
        ctx = ctxs[t % len(ctxs)]
        raw = [f"{format_shared(ctx)} |t b0", f"0:1:1 {line} |p during"]
        t0 = time.perf_counter_ns()
        learner.learn_at_risk(ctx, actions[7], 0, job=False)
        t1 = time.perf_counter_ns()
        ecs = lws._parse("\n".join(raw))  # noqa: SLF001
        lib.learn_multi(lws, ecs)
        lib._finish_example_multi_ex(lws, ecs)  # noqa: SLF001
        t2 = time.perf_counter_ns()
        learn_ours.append(t1 - t0)
        learn_ref.append(t2 - t1)
    out = {
        "choose_us_p50": round(float(np.percentile(ours_ns, 50)) / 1e3, 1),
        "choose_us_p99": round(float(np.percentile(ours_ns, 99)) / 1e3, 1),
        "bare_predict_us_p50": round(float(np.percentile(ref_ns, 50)) / 1e3, 1),
        "choose_over_bare_predict": round(float(np.mean(ours_ns) / np.mean(ref_ns)), 2),
        "learn_week_us_mean": round(float(np.mean(learn_ours)) / 1e3, 2),
        "bare_learn_us_mean": round(float(np.mean(learn_ref)) / 1e3, 2),
        "learn_over_bare_learn": round(float(np.mean(learn_ours) / np.mean(learn_ref)), 2),
    }
    print(
        f"vw hazard K=330: choose p50 {out['choose_us_p50']}us vs bare predict "
        f"{out['bare_predict_us_p50']}us (x{out['choose_over_bare_predict']}); learn one "
        f"citizen-week {out['learn_week_us_mean']}us vs bare {out['bare_learn_us_mean']}us "
        f"(x{out['learn_over_bare_learn']})",
        flush=True,
    )
    return out


def run(quick: bool = False) -> dict[str, object]:
    """Measure VWPolicy and RiverPolicy against bare VW / bare river in the same run."""
    ctxs = _contexts(200, seed=0)
    vw_rounds = {10: 300, 50: 300, 330: 100} if quick else {10: 3000, 50: 2000, 330: 600}
    river_rounds = {10: 200, 50: 100, 330: 30} if quick else {10: 1500, 50: 600, 330: 150}
    result: dict[str, object] = {
        "quick": quick,
        "vw_hazard_default_k330": _hazard_serving(ctxs, 100 if quick else 600),
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

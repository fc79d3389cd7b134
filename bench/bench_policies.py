"""Learning policies: choose+learn cost against the bare model calls doing the same work.

For 10, 50 and 300 eligible actions, measured round by round INTERLEAVED (one round of ours,
then one round of the reference, so load on the shared machine hits both alike):

* ``VWPolicy`` (squarecb, the default) through the full policy API (validation, formatting,
  link, pmf, floor, deterministic sampling, Decision, learn bookkeeping) against bare pylibvw
  on a workspace with the SAME options (``policy._scorer_args()``: ``--cb_adf --cb_type mtr``,
  the same interactions, loss and learning rate), doing the same VW calls on the SAME example
  text pre-built outside the timer: parse + ``predict_multi`` + action scores + finish on the
  K-action example, then parse + ``learn_multi`` + finish on the one labelled line the policy
  learns (the regression oracle's update);
* ``RiverPolicy`` (epsilon: one model; thompson: 10 bootstrap members) against bare river
  ``LogisticRegression`` models (as many as the policy has) doing the same calls on PRE-BUILT
  feature dicts: ``predict_proba_one`` per action and member, then the same ``learn_one`` calls
  with the same Poisson(1) weights (drawn outside the timer).

Times are the CPU time of the measuring thread (``time.thread_time_ns``: neither the other
workers on the 2 shared cores nor preemption count; both sides run on this one thread). Ratios
are ours / reference per round (choose + learn, means over the rounds) and for choose time
(p50, p99). ``python -m bench.run_all policies [--quick]``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bandit.catalog import default_catalog
from bandit.context import CitizenContext
from bandit.policies.river_policy import RiverPolicy
from bandit.policies.vw_policy import VWPolicy
from bandit.types import Action
from bandit.vw.examples import ActionLineCache, format_shared, labelled
from bandit.vw.workspace import VWLearner

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


class _Clock:
    """Choose and round times of ours and of the reference, after the warm-up rounds."""

    def __init__(self) -> None:
        self.ours: tuple[list[int], list[int]] = ([], [])
        self.ref: tuple[list[int], list[int]] = ([], [])

    def add(self, t: int, ours: tuple[int, int, int], ref: tuple[int, int, int]) -> None:
        if t < WARMUP:
            return
        for (choose, total), (a, b, c) in ((self.ours, ours), (self.ref, ref)):
            choose.append(b - a)
            total.append(c - a)

    def result(self, rounds: int) -> dict[str, Any]:
        ours, ref = _stats(*self.ours), _stats(*self.ref)
        return {"rounds": rounds, "ours": ours, "reference": ref, **_ratio(ours, ref)}


def _vw_vs_bare(ctxs: list[dict[str, Any]], actions: list[Action], n: int) -> dict[str, Any]:
    import pylibvw

    policy = VWPolicy()
    lib = pylibvw.vw
    rewards = np.random.default_rng(1).random(n + WARMUP) < 0.3
    lines = ActionLineCache().lines(actions)
    shared = [format_shared(c) for c in ctxs]
    texts = ["\n".join([s, *lines]) for s in shared]  # the policy's example text
    clock = _Clock()
    clock_ns = time.thread_time_ns
    with VWLearner(policy._scorer_args()) as bare:  # noqa: SLF001 (the same VW options)
        ws = bare._ws  # noqa: SLF001
        for t in range(n + WARMUP):
            i = t % len(ctxs)
            reward = float(rewards[t])
            t0 = clock_ns()
            decision = policy.choose(ctxs[i], actions, event_id=f"b{t}")
            t1 = clock_ns()
            policy.learn(decision, reward)
            t2 = clock_ns()
            line = labelled(lines[decision.chosen], policy._label(reward), 1.0)  # noqa: SLF001
            learn_text = f"{shared[i]}\n{line}"
            r0 = clock_ns()
            ecs = ws._parse(texts[i])  # noqa: SLF001
            lib.predict_multi(ws, ecs)
            ecs[0].get_action_scores()
            lib._finish_example_multi_ex(ws, ecs)  # noqa: SLF001
            r1 = clock_ns()
            ecs = ws._parse(learn_text)  # noqa: SLF001
            lib.learn_multi(ws, ecs)
            lib._finish_example_multi_ex(ws, ecs)  # noqa: SLF001
            r2 = clock_ns()
            clock.add(t, (t0, t1, t2), (r0, r1, r2))
    policy.close()
    return clock.result(n)


def _river_vs_bare(
    exploration: str,
) -> Callable[[list[dict[str, Any]], list[Action], int], dict[str, Any]]:
    def run(ctxs: list[dict[str, Any]], actions: list[Action], n: int) -> dict[str, Any]:
        policy = RiverPolicy(exploration=exploration)
        models = [policy._new_model() for _ in range(policy._n_models)]  # noqa: SLF001
        rows = [policy._rows_plain(c, actions) for c in ctxs]  # noqa: SLF001 (same dicts)
        rewards = np.random.default_rng(1).random(n + WARMUP) < 0.3
        clock = _Clock()
        clock_ns = time.thread_time_ns
        for t in range(n + WARMUP):
            i = t % len(ctxs)
            label = bool(rewards[t])
            if exploration == "thompson":  # the policy's Poisson(1) weights for this update
                draw = np.random.default_rng([policy.seed % 2**63, policy.n_updates])
                weights = draw.poisson(1.0, size=len(models)).tolist()
            else:
                weights = [1]
            t0 = clock_ns()
            decision = policy.choose(ctxs[i], actions, event_id=f"b{t}")
            t1 = clock_ns()
            policy.learn(decision, float(label))
            t2 = clock_ns()
            xs = rows[i]
            x = xs[decision.chosen]
            r0 = clock_ns()
            [[m.predict_proba_one(row)[True] for row in xs] for m in models]
            r1 = clock_ns()
            for m, w in zip(models, weights, strict=True):
                if w > 0:
                    m.learn_one(x, label, w=float(w))
            r2 = clock_ns()
            clock.add(t, (t0, t1, t2), (r0, r1, r2))
        return clock.result(n)

    return run


def _ratio(ours: dict[str, float], ref: dict[str, float]) -> dict[str, float]:
    return {
        "round_cost_ratio": round(ours["round_us_mean"] / ref["round_us_mean"], 2),
        "choose_p50_ratio": round(ours["choose_us_p50"] / ref["choose_us_p50"], 2),
        "choose_p99_ratio": round(ours["choose_us_p99"] / ref["choose_us_p99"], 2),
    }


def _section(
    title: str,
    measure: Callable[[list[dict[str, Any]], list[Action], int], dict[str, Any]],
    rounds: dict[int, int],
    ctxs: list[dict[str, Any]],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in SIZES:
        row = measure(ctxs, _actions(k), rounds[k])
        ours, ref = row["ours"], row["reference"]
        out[str(k)] = row
        print(
            f"{title:<18} K={k:<4} ours {ours['rounds_per_s']:>8.0f} r/s "
            f"p50 {ours['choose_us_p50']:>8.1f}us p99 {ours['choose_us_p99']:>8.1f}us | "
            f"bare {ref['rounds_per_s']:>8.0f} r/s p50 {ref['choose_us_p50']:>8.1f}us "
            f"p99 {ref['choose_us_p99']:>8.1f}us | cost x{row['round_cost_ratio']:.2f}",
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
    vw_rounds = {10: 600, 50: 400, 300: 150} if quick else {10: 3000, 50: 2000, 300: 600}
    river_rounds = {10: 200, 50: 100, 300: 30} if quick else {10: 1500, 50: 600, 300: 150}
    return {
        "quick": quick,
        "vw_hazard_default_k330": _hazard_serving(ctxs, 100 if quick else 600),
        "vw_squarecb_vs_bare_pylibvw": _section("vw vs pylibvw", _vw_vs_bare, vw_rounds, ctxs),
        "river_epsilon_vs_bare_river": _section(
            "river epsilon", _river_vs_bare("epsilon"), river_rounds, ctxs
        ),
        "river_thompson10_vs_bare_river": _section(
            "river thompson10", _river_vs_bare("thompson"), river_rounds, ctxs
        ),
    }

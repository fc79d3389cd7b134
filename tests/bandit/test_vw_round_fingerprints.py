"""VWPolicy's choose + learn rounds give the outputs of the implementation before the per-round
overhead was cut (issue 12 item 3): pmfs, chosen actions, propensities, expected rewards, the
predictions tracked at learning and the learned model bytes, bit for bit.

The fingerprints were recorded from the previous implementation on the same fixed sequence
(re-recorded when the snapshot header gained the per-family residuals, after checking that
the old fingerprints still matched with that header entry left out)
(varied and repeated contexts, the memo path and learning an older decision, an explicit
action index and propensity, a changed action set, sets of 1 and of 10 and 50 offers).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pytest

from bandit.policies.vw_policy import VWPolicy
from bandit.types import Action, Decision
from tests.helpers.contexts import catalog_actions, citizen

_CUSTOM = Action("custom", {"family": "mentor", "length_weeks": 7, "sector": "it"})


def _contexts(n: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(5)
    out = []
    for _ in range(n):
        out.append(
            dict(
                citizen(
                    weeks_unemployed=int(rng.integers(0, 80)),
                    age=int(rng.integers(18, 66)),
                    cv_tokens=("welding", "forklift")[: int(rng.integers(0, 3))],
                    last_sector=("it", "retail", "construction")[int(rng.integers(0, 3))],
                ).features()
            )
        )
    return out


def _rounded(values: tuple[float, ...], digits: int | None) -> tuple[float, ...]:
    return values if digits is None else tuple(float(f"{v:.{digits}g}") for v in values)


def _record(h: Any, decision: Decision, digits: int | None = None) -> None:
    h.update(
        repr(
            (
                decision.event_id,
                _rounded(decision.pmf, digits),
                decision.chosen,
                _rounded((decision.propensity,), digits),
                _rounded(decision.expected_rewards, digits),
                decision.model_version,
                tuple(a.id for a in decision.actions),
            )
        ).encode()
    )


def fingerprint(params: dict[str, Any], k: int, rounds: int = 120) -> str:
    """A digest of every output of a fixed choose/learn sequence and of the final model."""
    policy = VWPolicy(**params)
    actions = catalog_actions(k)
    mixed = [*actions[:-1], _CUSTOM]
    contexts = _contexts(40)
    rng = np.random.default_rng(11)
    h = hashlib.sha256()
    older: Decision | None = None
    for i in range(rounds):
        ctx = contexts[int(rng.integers(0, len(contexts)))]
        acts = mixed if i % 7 == 3 else (actions[:1] if i % 23 == 5 else actions)
        d = policy.choose(ctx, acts, event_id=f"e{i}")
        _record(h, d)
        reward = float(rng.random() < 0.3)
        if i % 11 == 4 and older is not None:  # learn an older decision: no memo
            policy.learn(older, reward)
        elif i % 13 == 6 and len(d.actions) > 1:  # another action, logged propensity
            j = (d.chosen + 1) % len(d.actions)
            policy.learn(d, reward, action_index=j, propensity=d.pmf[j])
        else:
            policy.learn(d, reward)
        h.update(repr(policy._error_stats).encode())
        if i % 5 == 0:
            older = d
    h.update(repr(policy.probabilities(contexts[0], actions).tolist()).encode())
    h.update(repr(policy.estimates_of(contexts[1], actions).tolist()).encode())
    h.update(policy.to_bytes())
    return h.hexdigest()


def hazard_fingerprint(k: int = 10, rounds: int = 60) -> str:
    """The same for the default hazard learner: citizen-weeks learned, then choices.

    The hazard's job probabilities go through numpy's exp and log, whose last bits depend on
    the CPU's vector extensions (AVX-512 or not), so its pmfs and estimates are compared to
    12 significant digits; VW's model bytes still bit for bit.
    """
    policy = VWPolicy(target="hazard", seed=2, gamma_scale=50.0)
    actions = catalog_actions(k)
    contexts = _contexts(20)
    rng = np.random.default_rng(12)
    h = hashlib.sha256()
    for i in range(rounds):
        ctx = contexts[i % len(contexts)]
        d = policy.choose(ctx, actions, event_id=f"h{i}")
        _record(h, d, digits=12)
        for week in range(int(rng.integers(1, 6))):
            policy.learn_at_risk(ctx, d.chosen_action, week, job=bool(rng.random() < 0.15))
    h.update(policy.to_bytes())
    return h.hexdigest()


# gamma_scale pinned at the default the fingerprints were recorded with (now 200)
CASES: list[tuple[dict[str, Any], int]] = [
    ({"seed": 1, "gamma_scale": 50.0}, 10),
    ({"seed": 1, "gamma_scale": 50.0}, 50),
    ({"exploration": "epsilon", "epsilon": 0.2, "seed": 3, "gamma_scale": 50.0}, 10),
    ({"exploration": "epsilon", "epsilon": 0.2, "seed": 3, "gamma_scale": 50.0}, 50),
    (
        {
            "seed": 4,
            "explore_families": False,
            "optimism": 0.0,
            "loss": "squared",
            "gamma_scale": 50.0,
        },
        10,
    ),
    (
        {
            "seed": 4,
            "explore_families": False,
            "optimism": 0.0,
            "loss": "squared",
            "gamma_scale": 50.0,
        },
        50,
    ),
    ({"exploration": "regcb", "seed": 5, "bits": 16, "gamma_scale": 50.0}, 10),
]

EXPECTED: dict[int, str] = {
    0: "8228081b60a0376c6ec4e29b925c8517aaff6ebbfd40455866e3ff7d74afa073",
    1: "7177670b6cff7d552b2124bb043d060bbb6049d58a3c56f29b0614af80ca601b",
    2: "5e90f4728efe8d7d6bbba72b680a201766654b6650fb3112cf8ac892fad2f75e",
    3: "4e4477b70e58850acc28994dc11ba8c6a72ff6b514b0ba690867095bcef9b41f",
    4: "89d1dc8cdcaa902fe848aaf938aeff94ff1d89ff24ab6b49f3059c31a7c387fd",
    5: "8306bd1fb15237ed5d9f5bb6686ac0d4fcfe3f71602b98c10c5c864851ef89f4",
    6: "e54783ce00950a2dd89a033f54bc925c5184ad60246706594b3560902d5d014a",
}


HAZARD_EXPECTED = "06e16c6e5cb742fa28dfa331fd017bfe6e94e4bfaa57fda63a8e2f9a47e1830c"


@pytest.mark.parametrize("case", range(len(CASES)))
def test_rounds_match_the_recorded_implementation(case: int) -> None:
    params, k = CASES[case]
    assert fingerprint(params, k) == EXPECTED[case]


def test_hazard_rounds_match_the_recorded_implementation() -> None:
    assert hazard_fingerprint() == HAZARD_EXPECTED


if __name__ == "__main__":  # print the fingerprints of the current implementation
    for i, (params, k) in enumerate(CASES):
        print(f"    {i}: {fingerprint(params, k)!r},  # {params} K={k}")
    print(f"HAZARD_EXPECTED = {hazard_fingerprint()!r}")


@pytest.mark.parametrize("k", [1, 2, 7, 10, 23, 24, 50, 64])
def test_numpys_tanh_of_an_element_does_not_depend_on_the_array(k: int) -> None:
    """The expected reward remembered from a choice (``_memo_prediction``) is the element of
    the K-action link, where predicting the one action again takes the tanh of a 1-element
    array: equal only because numpy's tanh of an element ignores its neighbours."""
    rng = np.random.default_rng(k)
    for _ in range(200):
        x = rng.standard_normal(k) * 10.0 ** rng.uniform(-6, 3, k)
        together = np.tanh(x).tolist()
        assert together == [float(np.tanh(np.asarray([v]))[0]) for v in x.tolist()]


def test_the_fused_round_equals_the_generic_path() -> None:
    """choose() at small K gives the Decision of the base class's path on the same model."""
    from bandit.policies.base import Policy

    policy = VWPolicy(seed=6)
    actions = catalog_actions(12)
    contexts = _contexts(10)
    for i in range(40):
        ctx = contexts[i % len(contexts)]
        fused = policy.choose(ctx, actions, event_id=f"f{i}")
        generic = Policy.choose(policy, ctx, actions, event_id=f"f{i}")
        assert fused == generic
        policy.learn(generic, float(i % 3 == 0))

"""Target policies for evaluation: by name (trained on a training split) or from an array.

Named targets: any policy in :data:`bandit.policies.POLICY_REGISTRY` (``vw``, ``river``,
``uniform``, ``practice``) built with ``make_policy(name, **params)``, trained with
:meth:`~bandit.policies.Policy.learn` on the earlier rounds of the log (time order kept) and
queried with :meth:`~bandit.policies.Policy.probabilities` on the later ones; or
``always:<family>`` (all mass on the eligible actions of one family). Logged integer actions
become ``Action(id=str(k), features=...)`` with the per-action features the log carries (the
simulator's ``.meta.json`` families). Eligible actions per round are those with logger pmf > 0
when the pmf is logged, otherwise all actions. Static policies that score many rounds at once
(:class:`~bandit.policies.batch.BatchProbabilities`: ``uniform``, ``practice``) skip the
training loop (what they learn does not change their pmf) and are computed in one call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bandit.policies import POLICY_REGISTRY, make_policy
from bandit.policies.base import StaticPolicy
from bandit.policies.batch import BatchProbabilities
from bandit.types import Action, Decision, FeatureValue
from offline_eval.errors import TargetPolicyError
from offline_eval.logs import LoggedBandit, check_probability_matrix

ALWAYS_PREFIX = "always:"


def actions_of(logs: LoggedBandit) -> list[Action]:
    """One :class:`Action` per action index, with the log's action features."""
    feats = logs.action_features or tuple({} for _ in range(logs.n_actions))
    return [Action(id=str(k), features=dict(feats[k])) for k in range(logs.n_actions)]


def eligible_mask(logs: LoggedBandit) -> np.ndarray:
    """Boolean ``(n_rounds, K)``: actions the logger could take in each round."""
    if logs.pmf is not None:
        mask: np.ndarray = logs.pmf > 0
        return mask
    return np.ones((logs.n_rounds, logs.n_actions), dtype=bool)


def load_target_probs(path: str | Path, logs: LoggedBandit) -> np.ndarray:
    """Load a ``.npy`` array of target probabilities and validate it against ``logs``."""
    p = Path(path)
    if not p.exists():
        msg = f"No such target-probabilities file: {p}"
        raise TargetPolicyError(msg)
    try:
        probs = np.load(p, allow_pickle=False)
    except ValueError as exc:
        msg = f"Cannot read {p.name} as a .npy array: {exc}"
        raise TargetPolicyError(msg) from None
    probs = np.asarray(probs, dtype=float)
    logs.check_target(probs)
    return probs


def always_family(logs: LoggedBandit, family: str) -> tuple[np.ndarray, int]:
    """All mass on the eligible actions of ``family`` (uniform among them).

    Rounds where no action of the family is eligible get uniform over the eligible actions;
    their count is returned too.
    """
    families = np.array([str(f.get("family", "")) for f in logs.action_features])
    if family not in set(families):
        known = ", ".join(sorted(set(families))) or "none: the log carries no action families"
        msg = f"Unknown family {family!r} in always:<family> (known: {known})"
        raise TargetPolicyError(msg)
    eligible = eligible_mask(logs)
    chosen = eligible & (families == family)[None, :]
    fallback = ~chosen.any(axis=1)
    chosen[fallback] = eligible[fallback]
    probs = chosen / chosen.sum(axis=1, keepdims=True)
    return probs, int(fallback.sum())


def policy_target_probs(
    name: str,
    train: LoggedBandit,
    test: LoggedBandit,
    train_contexts: Sequence[Mapping[str, FeatureValue]],
    test_contexts: Sequence[Mapping[str, FeatureValue]],
    params: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """Train policy ``name`` on ``train`` and return its pmf on ``test``, ``(n_test, K)``."""
    if name not in POLICY_REGISTRY:
        known = ", ".join([*sorted(POLICY_REGISTRY), "always:<family>"])
        msg = f"Unknown target policy {name!r} (known: {known})"
        raise TargetPolicyError(msg)
    policy = make_policy(name, **dict(params or {}))
    actions = actions_of(train)
    if isinstance(policy, StaticPolicy) and isinstance(policy, BatchProbabilities):
        # a static policy's pmf does not depend on what it learns: one vectorised call
        frame = pd.DataFrame.from_records(list(test_contexts), nrows=test.n_rounds)
        columns = {str(c): frame[c].to_numpy() for c in frame.columns}
        out = policy.batch_probabilities(columns, eligible_mask(test), actions)
        check_probability_matrix(out, test.n_rounds)
        return out
    mask = eligible_mask(train)
    for i in range(train.n_rounds):
        idx = np.flatnonzero(mask[i])
        if int(train.action[i]) not in idx:
            idx = np.union1d(idx, [int(train.action[i])])
        acts = tuple(actions[j] for j in idx)
        pmf = train.pmf[i, idx] if train.pmf is not None else np.full(len(idx), 1.0 / len(idx))
        chosen = int(np.flatnonzero(idx == train.action[i])[0])
        decision = Decision(
            event_id=f"train-{i}",
            context=dict(train_contexts[i]),
            actions=acts,
            pmf=tuple(float(p) for p in pmf),
            chosen=chosen,
            propensity=float(train.propensity[i]),
            expected_rewards=tuple(0.0 for _ in idx),
            model_version="logged",
            policy="logger",
        )
        policy.learn(decision, float(train.reward[i]), propensity=float(train.propensity[i]))
    out = np.zeros((test.n_rounds, test.n_actions))
    test_mask = eligible_mask(test)
    for i in range(test.n_rounds):
        idx = np.flatnonzero(test_mask[i])
        out[i, idx] = policy.probabilities(test_contexts[i], [actions[j] for j in idx])
    check_probability_matrix(out, test.n_rounds)
    return out

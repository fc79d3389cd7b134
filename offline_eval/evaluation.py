"""Evaluate target policies on a log: every estimator with its interval, plus diagnostics."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from bandit.types import FeatureValue
from offline_eval.ci import CIConfig, Estimate, intervals
from offline_eval.diagnostics import Diagnostics, diagnose
from offline_eval.errors import TargetPolicyError
from offline_eval.estimators import ESTIMATORS, BaseEstimator, default_estimators
from offline_eval.estimators.base import RoundTerms, round_terms
from offline_eval.logs import LoggedBandit
from offline_eval.reward_model import RewardModel, RidgeRewardModel
from offline_eval.targets import ALWAYS_PREFIX, always_family, policy_target_probs


@dataclass(frozen=True)
class PolicyEvaluation:
    """The estimates of one target policy on one log."""

    policy: str
    estimates: tuple[Estimate, ...]
    diagnostics: Diagnostics
    n_rounds: int
    logged_value: float
    note: str = ""
    true_value: float | None = None
    """The target's true value on the evaluated rounds, when the log's ground truth is known
    (simulator logs ship it as ``<stem>.truth.npz``); ``None`` otherwise."""

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict (NaN as ``None``)."""
        return {
            "policy": self.policy,
            "n_rounds": self.n_rounds,
            "logged_value": self.logged_value,
            "true_value": self.true_value,
            "note": self.note,
            "estimates": [_clean(asdict(e)) for e in self.estimates],
            "diagnostics": _clean(self.diagnostics.to_dict()),
        }


def _clean(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def build_estimators(names: Sequence[str] | None, logs: LoggedBandit) -> list[BaseEstimator]:
    """Estimators by name (default: all that apply; Replay only for uniform logs)."""
    uniform = bool(np.allclose(logs.propensity, 1.0 / logs.n_actions))
    return estimators_by_name(names, uniform_logger=uniform)


def estimators_by_name(names: Sequence[str] | None, *, uniform_logger: bool) -> list[BaseEstimator]:
    """Estimators by name sharing one :class:`RidgeRewardModel` (default: all that apply;
    Replay only when ``uniform_logger``)."""
    model = RidgeRewardModel()
    if not names:
        return default_estimators(model, uniform_logger=uniform_logger)
    out: list[BaseEstimator] = []
    for name in names:
        if name not in ESTIMATORS:
            msg = f"Unknown estimator {name!r} (known: {', '.join(ESTIMATORS)})"
            raise TargetPolicyError(msg)
        cls: type[BaseEstimator] = ESTIMATORS[name]
        out.append(cls(model) if name in ("dm", "dr", "sndr", "switch_dr") else cls())  # type: ignore[call-arg]
    return out


def evaluate_target(
    logs: LoggedBandit,
    target_probs: np.ndarray,
    policy: str,
    *,
    estimators: Sequence[BaseEstimator] | None = None,
    ci: CIConfig | None = None,
    note: str = "",
    truth: np.ndarray | None = None,
    q_hats: dict[RewardModel, np.ndarray] | None = None,
) -> PolicyEvaluation:
    """Run every estimator on one target.

    ``truth`` is the known expected reward of every (round, action), shape
    ``(n_rounds, n_actions)``; when given, the target's true value is reported next to the
    estimates. ``q_hats`` caches each reward model's predictions on ``logs`` across targets
    (filled on first use).
    """
    ests = list(estimators) if estimators is not None else build_estimators(None, logs)
    logs.check_target(target_probs)
    q_hats = q_hats if q_hats is not None else {}
    terms: dict[RewardModel | None, RoundTerms] = {}
    for e in ests:  # each reward model is fitted once and shared by DM/DR/SNDR/Switch-DR
        m = e.model()
        if m not in terms:
            if m is not None and m not in q_hats:
                q_hats[m] = m.predict_matrix(logs)
            terms[m] = round_terms(logs, target_probs, m, None if m is None else q_hats[m])
    rewards = [e.from_terms(terms[e.model()]) for e in ests]
    # one call for all estimators: the exact bootstrap draws one set of weights for them all
    results = tuple(intervals(rewards, ci, [e.name for e in ests]))
    true_value = None
    if truth is not None:
        if truth.shape != target_probs.shape:
            msg = f"Expected the truth matrix to have shape {target_probs.shape}, got {truth.shape}"
            raise ValueError(msg)
        true_value = float(np.mean(np.sum(target_probs * truth, axis=1)))
    return PolicyEvaluation(
        policy=policy,
        estimates=results,
        diagnostics=diagnose(logs, target_probs),
        n_rounds=logs.n_rounds,
        logged_value=float(logs.reward.mean()),
        note=note,
        true_value=true_value,
    )


def evaluate_named(
    logs: LoggedBandit,
    contexts: pd.DataFrame,
    policies: Sequence[str],
    *,
    train_fraction: float = 0.5,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    estimator_names: Sequence[str] | None = None,
    ci: CIConfig | None = None,
    truth: np.ndarray | None = None,
) -> list[PolicyEvaluation]:
    """Train each named policy on the first part of the log, evaluate on the rest.

    ``truth`` (optional, shape ``(n_rounds, n_actions)`` over the whole log) adds each
    target's true value on the evaluated rounds.
    """
    train, test = logs.split(train_fraction)
    records: list[dict[str, FeatureValue]] = [
        {str(k): v for k, v in row.items()} for row in contexts.to_dict(orient="records")
    ]
    cut = train.n_rounds
    ests = build_estimators(estimator_names, test)
    q_hats: dict[RewardModel, np.ndarray] = {}
    out = []
    for name in policies:
        note = f"trained on rounds 0..{cut - 1}, evaluated on {cut}..{logs.n_rounds - 1}"
        if name.startswith(ALWAYS_PREFIX):
            probs, fallback = always_family(test, name[len(ALWAYS_PREFIX) :])
            note = f"evaluated on rounds {cut}..{logs.n_rounds - 1}; {fallback} rounds fell back to uniform"
        else:
            probs = policy_target_probs(
                name,
                train,
                test,
                records[:cut],
                records[cut:],
                (params or {}).get(name),
            )
        test_truth = None if truth is None else truth[cut:]
        out.append(
            evaluate_target(
                test,
                probs,
                name,
                estimators=ests,
                ci=ci,
                note=note,
                truth=test_truth,
                q_hats=q_hats,
            )
        )
    return out


def estimates_table(evaluations: Sequence[PolicyEvaluation]) -> pd.DataFrame:
    """One row per (policy, estimator)."""
    rows = [
        {
            "policy": ev.policy,
            "estimator": e.estimator,
            "value": e.value,
            "ci_low": e.ci_low,
            "ci_high": e.ci_high,
            "n": e.n,
            "ess": ev.diagnostics.ess,
            "max_weight": ev.diagnostics.max_weight,
            "unsupported": ev.diagnostics.unsupported_share,
            **({} if ev.true_value is None else {"true_value": ev.true_value}),
        }
        for ev in evaluations
        for e in ev.estimates
    ]
    return pd.DataFrame(rows)

"""The estimator interface: ``estimate(logs, target_probs) -> Estimate``.

Subclasses are frozen dataclasses of hyperparameters with ``name: ClassVar[str]`` and implement
only :meth:`BaseEstimator._round_rewards`; the interval comes from :mod:`offline_eval.ci`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from offline_eval.ci import CIConfig, Estimate, RoundRewards, interval
from offline_eval.logs import LoggedBandit
from offline_eval.reward_model import RewardModel, RidgeRewardModel


class BaseEstimator(ABC):
    """Base class of the off-policy estimators."""

    name: ClassVar[str]

    def estimate(
        self, logs: LoggedBandit, target_probs: np.ndarray, ci: CIConfig | None = None
    ) -> Estimate:
        """Estimate the value of the target policy on ``logs`` with an interval.

        Parameters
        ----------
        logs
            Logged bandit feedback.
        target_probs
            Target policy's action probabilities, shape ``(n_rounds, n_actions)``.
        ci
            Interval method (default: analytic 95 %).
        """
        logs.check_target(target_probs)
        return interval(self._round_rewards(logs, target_probs), ci, estimator=self.name)

    def round_rewards(self, logs: LoggedBandit, target_probs: np.ndarray) -> RoundRewards:
        """Validated per-round contributions (for custom intervals or diagnostics)."""
        logs.check_target(target_probs)
        return self._round_rewards(logs, target_probs)

    @abstractmethod
    def _round_rewards(self, logs: LoggedBandit, target_probs: np.ndarray) -> RoundRewards:
        """Per-round contributions; the estimate is their mean (or ratio of sums)."""


def default_reward_model() -> RewardModel:
    """The reward model used when none is given: cross-fitted ridge."""
    return RidgeRewardModel()


def factual(q_hat: np.ndarray, action: np.ndarray) -> np.ndarray:
    """``q_hat[i, action[i]]`` per round."""
    picked: np.ndarray = q_hat[np.arange(action.shape[0]), action]
    return picked


def dr_terms(
    reward_model: RewardModel, logs: LoggedBandit, target_probs: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The per-round terms every doubly robust estimator combines, each shape ``(n_rounds,)``.

    Returns ``(dm, w, residual)``: the direct-method value ``sum_a pi(a|x) q_hat(x, a)``, the
    importance weight ``pi(a_i|x_i) / p_i`` and the residual ``r_i - q_hat(x_i, a_i)``.
    """
    q_hat = reward_model.predict_matrix(logs)
    dm: np.ndarray = (target_probs * q_hat).sum(axis=1)
    return dm, logs.importance_weights(target_probs), logs.reward - factual(q_hat, logs.action)


_ROWS_PER_CHUNK = 20_000


def logger_variance(
    logs: LoggedBandit,
    target_probs: np.ndarray,
    squared_term: np.ndarray,
    *,
    max_weight: float = np.inf,
    switch_tau: float | None = None,
) -> float | None:
    """Second moment of the weighted term that the known logger implies, per round.

    A weighted estimator's per-round term is ``w_i t_i`` with ``w_i = pi(a_i|x_i) / mu(a_i|x_i)``.
    Its expected square given the context is ``sum_a pi(a|x)^2 / mu(a|x) E[t^2 | x, a]``, which
    depends on every action the logger *could* have taken, not only on the rounds where a rare,
    heavily weighted action happened to be drawn. ``E[t^2 | x, a]`` is estimated by the mean of
    ``squared_term`` over the rounds that logged ``a`` (shrunk towards the overall mean with one
    pseudo-round). The result is a floor for the empirical variance of low-ESS targets, where a
    sample that drew few heavily weighted rounds otherwise under-states its own variance.

    Returns ``None`` when the log carries no logger pmf (only the logged action's propensity).

    Parameters
    ----------
    logs
        The logged rounds (with ``pmf``).
    target_probs
        Target probabilities, shape ``(n_rounds, n_actions)``.
    squared_term
        ``t_i^2`` per round, shape ``(n_rounds,)``.
    max_weight
        Weight clipping of the estimator (IPS), applied to every action's weight.
    switch_tau
        Switch-DR threshold: weights above it contribute nothing.
    """
    if logs.pmf is None or logs.n_rounds == 0:
        return None
    k = logs.n_actions
    count = np.bincount(logs.action, minlength=k).astype(float)
    total = np.bincount(logs.action, weights=squared_term, minlength=k)
    overall = float(squared_term.mean())
    per_action = (total + overall) / (count + 1.0)
    acc = 0.0
    for start in range(0, logs.n_rounds, _ROWS_PER_CHUNK):
        mu = logs.pmf[start : start + _ROWS_PER_CHUNK]
        pi = target_probs[start : start + _ROWS_PER_CHUNK]
        with np.errstate(divide="ignore", invalid="ignore"):
            w = np.where(mu > 0, pi / mu, 0.0)
        w = np.minimum(w, max_weight)
        if switch_tau is not None:
            w = np.where(w <= switch_tau, w, 0.0)
        acc += float(((mu * w * w) @ per_action).sum())
    return acc / logs.n_rounds


def dm_variance(dm: np.ndarray) -> float:
    """Sample variance of the direct-method part across rounds (0 for fewer than 2 rounds)."""
    return float(dm.var(ddof=1)) if dm.shape[0] > 1 else 0.0

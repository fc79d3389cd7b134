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

"""Direct method (DM): the reward model's value of the target policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from offline_eval.ci import RoundRewards
from offline_eval.estimators.base import BaseEstimator, default_reward_model
from offline_eval.logs import LoggedBandit
from offline_eval.reward_model import RewardModel


@dataclass(frozen=True)
class DirectMethod(BaseEstimator):
    """DM: ``V = mean_i sum_a pi(a | x_i) q_hat(x_i, a)``.

    Examples
    --------
    >>> from offline_eval.reward_model import PrecomputedRewards
    >>> logs = LoggedBandit(np.zeros((2, 1)), np.array([0, 1]), np.array([1.0, 0.5]),
    ...                     np.array([0.5, 0.25]), 2)
    >>> dm = DirectMethod(PrecomputedRewards(np.array([[0.2, 0.4], [0.6, 0.8]])))
    >>> round(dm.estimate(logs, np.array([[1.0, 0.0], [0.5, 0.5]])).value, 10)  # (0.2 + 0.7) / 2
    0.45

    References
    ----------
    Beygelzimer & Langford (2009); Dudik, Langford & Li (2011).
    """

    name: ClassVar[str] = "dm"
    reward_model: RewardModel = field(default_factory=default_reward_model)

    def _round_rewards(self, logs: LoggedBandit, target_probs: np.ndarray) -> RoundRewards:
        q_hat = self.reward_model.predict_matrix(logs)
        return RoundRewards((target_probs * q_hat).sum(axis=1))

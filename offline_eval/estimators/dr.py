"""Doubly robust (DR) estimator."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from offline_eval.ci import RoundRewards
from offline_eval.estimators.base import (
    BaseEstimator,
    RoundTerms,
    default_reward_model,
    dm_variance,
)
from offline_eval.reward_model import RewardModel


@dataclass(frozen=True)
class DoublyRobust(BaseEstimator):
    """DR: ``V = mean_i [sum_a pi(a|x_i) q_hat(x_i, a) + w_i (r_i - q_hat(x_i, a_i))]``.

    Examples
    --------
    >>> import numpy as np
    >>> from offline_eval.logs import LoggedBandit
    >>> from offline_eval.reward_model import PrecomputedRewards
    >>> logs = LoggedBandit(np.zeros((2, 1)), np.array([0, 1]), np.array([1.0, 0.5]),
    ...                     np.array([0.5, 0.25]), 2)
    >>> dr = DoublyRobust(PrecomputedRewards(np.array([[0.2, 0.4], [0.6, 0.8]])))
    >>> # round 0: 0.2 + 2 (1 - 0.2) = 1.8; round 1: 0.7 + 2 (0.5 - 0.8) = 0.1
    >>> round(dr.estimate(logs, np.array([[1.0, 0.0], [0.5, 0.5]])).value, 10)
    0.95

    References
    ----------
    Dudik, Langford & Li (2011), "Doubly robust policy evaluation and learning".
    """

    name: ClassVar[str] = "dr"
    reward_model: RewardModel = field(default_factory=default_reward_model)

    def model(self) -> RewardModel:
        """The reward model."""
        return self.reward_model

    def from_terms(self, terms: RoundTerms) -> RoundRewards:
        """``dm_i + w_i residual_i`` per round."""
        dm, w, residual = terms.model_terms()
        second = terms.second_moment(residual**2)
        floor = (
            None if second is None else dm_variance(dm) + second - float((w * residual).mean()) ** 2
        )
        return RoundRewards(dm + w * residual, variance_floor=floor)

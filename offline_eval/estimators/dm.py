"""Direct method (DM): the reward model's value of the target policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from offline_eval.ci import RoundRewards
from offline_eval.estimators.base import BaseEstimator, RoundTerms, default_reward_model
from offline_eval.reward_model import RewardModel


@dataclass(frozen=True)
class DirectMethod(BaseEstimator):
    """DM: ``V = mean_i sum_a pi(a | x_i) q_hat(x_i, a)``.

    Examples
    --------
    >>> import numpy as np
    >>> from offline_eval.logs import LoggedBandit
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

    def model(self) -> RewardModel:
        """The reward model."""
        return self.reward_model

    def from_terms(self, terms: RoundTerms) -> RoundRewards:
        """The DM value of each round."""
        dm, _, _ = terms.model_terms()
        return RoundRewards(dm)

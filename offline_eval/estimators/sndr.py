"""Self-normalised doubly robust (SNDR) estimator."""

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
class SelfNormalizedDR(BaseEstimator):
    """SNDR: ``V = mean_i dm_i + sum_i w_i (r_i - q_hat_i) / sum_i w_i``.

    The DM part is a plain mean and the residual part a ratio; both are resampled together
    (:class:`~offline_eval.ci.RoundRewards` with ``offset``).

    Examples
    --------
    >>> import numpy as np
    >>> from offline_eval.logs import LoggedBandit
    >>> from offline_eval.reward_model import PrecomputedRewards
    >>> logs = LoggedBandit(np.zeros((2, 1)), np.array([0, 1]), np.array([1.0, 0.5]),
    ...                     np.array([0.5, 0.25]), 2)
    >>> est = SelfNormalizedDR(PrecomputedRewards(np.array([[0.2, 0.4], [0.6, 0.8]])))
    >>> # dm mean 0.45; residual part (2*0.8 + 2*(-0.3)) / (2 + 2) = 0.25
    >>> round(est.estimate(logs, np.array([[1.0, 0.0], [0.5, 0.5]])).value, 10)
    0.7

    References
    ----------
    Kallus & Uehara (2019); Saito et al. (2021), Open Bandit Pipeline.
    """

    name: ClassVar[str] = "sndr"
    reward_model: RewardModel = field(default_factory=default_reward_model)

    def model(self) -> RewardModel:
        """The reward model."""
        return self.reward_model

    def from_terms(self, terms: RoundTerms) -> RoundRewards:
        """Residual ratio terms with the DM value as offset."""
        dm, w, residual = terms.model_terms()
        mean_w = float(w.mean())
        if mean_w <= 0:
            return RoundRewards(w * residual, w, offset=dm)
        ratio = float((w * residual).sum()) / float(w.sum())
        second = terms.second_moment((residual - ratio) ** 2)
        floor = None if second is None else dm_variance(dm) + second / mean_w**2
        return RoundRewards(w * residual, w, offset=dm, variance_floor=floor)

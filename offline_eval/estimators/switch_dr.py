"""Switch doubly robust (Switch-DR) estimator."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

from bandit.errors import InvalidInputError
from offline_eval.ci import RoundRewards
from offline_eval.estimators.base import (
    BaseEstimator,
    RoundTerms,
    default_reward_model,
    dm_variance,
)
from offline_eval.reward_model import RewardModel


@dataclass(frozen=True)
class SwitchDR(BaseEstimator):
    """Switch-DR: DR where ``w_i <= tau``, DM only where the weight exceeds ``tau``.

    ``V = mean_i [sum_a pi(a|x_i) q_hat(x_i, a) + 1{w_i <= tau} w_i (r_i - q_hat(x_i, a_i))]``
    (OBP's ``SwitchDoublyRobust`` form).

    Examples
    --------
    >>> import numpy as np
    >>> from offline_eval.logs import LoggedBandit
    >>> from offline_eval.reward_model import PrecomputedRewards
    >>> logs = LoggedBandit(np.zeros((2, 1)), np.array([0, 1]), np.array([1.0, 0.5]),
    ...                     np.array([0.5, 0.25]), 2)
    >>> q = PrecomputedRewards(np.array([[0.2, 0.4], [0.6, 0.8]]))
    >>> pi = np.array([[1.0, 0.0], [0.5, 0.5]])
    >>> round(SwitchDR(q, tau=1.5).estimate(logs, pi).value, 10)  # both weights 2 > tau: DM
    0.45

    References
    ----------
    Wang, Agarwal & Dudik (2017), "Optimal and adaptive off-policy evaluation in contextual bandits".
    """

    name: ClassVar[str] = "switch_dr"
    reward_model: RewardModel = field(default_factory=default_reward_model)
    tau: float = 50.0

    def __post_init__(self) -> None:
        if not self.tau > 0:
            msg = f"Expected tau > 0, got {self.tau}"
            raise InvalidInputError(msg)

    def model(self) -> RewardModel:
        """The reward model."""
        return self.reward_model

    def logger_variant(self) -> tuple[float, float | None]:
        """Weights above ``tau`` contribute nothing."""
        return math.inf, self.tau

    def from_terms(self, terms: RoundTerms) -> RoundRewards:
        """``dm_i + 1{w_i <= tau} w_i residual_i`` per round."""
        dm, w, residual = terms.model_terms()
        keep = w <= self.tau
        second = terms.second_moment(residual**2, switch_tau=self.tau)
        kept = keep * w * residual
        floor = None if second is None else dm_variance(dm) + second - float(kept.mean()) ** 2
        return RoundRewards(dm + kept, variance_floor=floor)

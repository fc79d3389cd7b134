"""Self-normalised inverse propensity scoring (SNIPS)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from offline_eval.ci import RoundRewards
from offline_eval.estimators.base import BaseEstimator, RoundTerms


@dataclass(frozen=True)
class SNIPS(BaseEstimator):
    """SNIPS: ``V = sum_i w_i r_i / sum_i w_i`` (a ratio; bootstrapped as one).

    Examples
    --------
    >>> import numpy as np
    >>> from offline_eval.logs import LoggedBandit
    >>> logs = LoggedBandit(np.zeros((2, 1)), np.array([0, 1]), np.array([1.0, 0.5]),
    ...                     np.array([0.5, 0.25]), 2)
    >>> SNIPS().estimate(logs, np.array([[1.0, 0.0], [0.5, 0.5]])).value  # (2 + 1) / (2 + 2)
    0.75

    References
    ----------
    Swaminathan & Joachims (2015), "The self-normalized estimator for counterfactual learning".
    """

    name: ClassVar[str] = "snips"

    def from_terms(self, terms: RoundTerms) -> RoundRewards:
        """``w_i r_i`` over ``w_i`` per round."""
        w = terms.weights()
        reward = terms.reward
        mean_w = float(w.mean())
        if mean_w <= 0:
            return RoundRewards(w * reward, w)
        value = float((w * reward).sum()) / float(w.sum())
        second = terms.second_moment((reward - value) ** 2)
        floor = None if second is None else second / mean_w**2
        return RoundRewards(w * reward, w, variance_floor=floor)

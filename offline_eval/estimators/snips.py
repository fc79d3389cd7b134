"""Self-normalised inverse propensity scoring (SNIPS)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from offline_eval.ci import RoundRewards
from offline_eval.estimators.base import BaseEstimator, logger_variance
from offline_eval.logs import LoggedBandit


@dataclass(frozen=True)
class SNIPS(BaseEstimator):
    """SNIPS: ``V = sum_i w_i r_i / sum_i w_i`` (a ratio; bootstrapped as one).

    Examples
    --------
    >>> logs = LoggedBandit(np.zeros((2, 1)), np.array([0, 1]), np.array([1.0, 0.5]),
    ...                     np.array([0.5, 0.25]), 2)
    >>> SNIPS().estimate(logs, np.array([[1.0, 0.0], [0.5, 0.5]])).value  # (2 + 1) / (2 + 2)
    0.75

    References
    ----------
    Swaminathan & Joachims (2015), "The self-normalized estimator for counterfactual learning".
    """

    name: ClassVar[str] = "snips"

    def _round_rewards(self, logs: LoggedBandit, target_probs: np.ndarray) -> RoundRewards:
        w = logs.importance_weights(target_probs)
        mean_w = float(w.mean())
        if mean_w <= 0:
            return RoundRewards(w * logs.reward, w)
        value = float((w * logs.reward).sum()) / float(w.sum())
        second = logger_variance(logs, target_probs, (logs.reward - value) ** 2)
        floor = None if second is None else second / mean_w**2
        return RoundRewards(w * logs.reward, w, variance_floor=floor)

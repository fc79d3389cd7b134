"""Inverse propensity scoring (IPS)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from bandit.errors import InvalidInputError
from offline_eval.ci import RoundRewards
from offline_eval.estimators.base import BaseEstimator, RoundTerms


@dataclass(frozen=True)
class IPS(BaseEstimator):
    """IPS: ``V = mean_i w_i r_i`` with ``w_i = pi(a_i | x_i) / p_i``, weights clipped at ``max_weight``.

    Examples
    --------
    >>> from offline_eval.logs import LoggedBandit
    >>> logs = LoggedBandit(np.zeros((2, 1)), np.array([0, 1]), np.array([1.0, 0.5]),
    ...                     np.array([0.5, 0.25]), 2)
    >>> IPS().estimate(logs, np.array([[1.0, 0.0], [0.5, 0.5]])).value  # (2*1 + 2*0.5) / 2
    1.5

    References
    ----------
    Horvitz & Thompson (1952); Precup, Sutton & Singh (2000).
    """

    name: ClassVar[str] = "ips"
    max_weight: float = math.inf

    def __post_init__(self) -> None:
        if not self.max_weight > 0:
            msg = f"Expected max_weight > 0, got {self.max_weight}"
            raise InvalidInputError(msg)

    def logger_variant(self) -> tuple[float, float | None]:
        """Weights are clipped at ``max_weight``."""
        return self.max_weight, None

    def from_terms(self, terms: RoundTerms) -> RoundRewards:
        """``min(w_i, max_weight) r_i`` per round."""
        w = np.minimum(terms.weights(), self.max_weight)
        values = w * terms.reward
        second = terms.second_moment(terms.reward**2, max_weight=self.max_weight)
        floor = None if second is None else second - float(values.mean()) ** 2
        return RoundRewards(values, variance_floor=floor)

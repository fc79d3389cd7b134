"""Replay (rejection sampling) for uniformly logged data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from offline_eval.ci import RoundRewards
from offline_eval.errors import LoggedDataError
from offline_eval.estimators.base import BaseEstimator, RoundTerms

UNIFORM_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Replay(BaseEstimator):
    """Replay: keep round ``i`` with probability ``pi(a_i | x_i) / max pi`` and average kept rewards.

    Valid only when the logger was uniform over the actions; with a deterministic target this is
    Li et al.'s replay (keep rounds where the target picks the logged action). ``n`` of the
    estimate is the number of accepted rounds.

    Examples
    --------
    >>> from offline_eval.logs import LoggedBandit
    >>> logs = LoggedBandit(np.zeros((4, 1)), np.array([0, 1, 0, 1]),
    ...                     np.array([1.0, 0.0, 0.0, 1.0]), np.full(4, 0.5), 2)
    >>> Replay().estimate(logs, np.tile([1.0, 0.0], (4, 1))).value  # rounds 0 and 2 kept
    0.5

    References
    ----------
    Li, Chu, Langford & Wang (2011), "Unbiased offline evaluation of contextual-bandit-based
    news article recommendation algorithms".
    """

    name: ClassVar[str] = "replay"
    seed: int = 0

    def from_terms(self, terms: RoundTerms) -> RoundRewards:
        """The rewards of the accepted rounds."""
        uniform = 1.0 / terms.n_actions
        if not np.allclose(terms.propensity, uniform, rtol=0, atol=UNIFORM_TOLERANCE):
            msg = (
                f"Replay needs uniformly logged data (every propensity 1/{terms.n_actions}); "
                "use IPS/DR for other loggers"
            )
            raise LoggedDataError(msg)
        u = np.random.default_rng(self.seed).random(terms.n)
        accepted = u * terms.max_target < terms.picked
        return RoundRewards(terms.reward[accepted])

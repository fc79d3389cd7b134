"""Replay (rejection sampling) for uniformly logged data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from offline_eval.ci import RoundRewards
from offline_eval.errors import LoggedDataError
from offline_eval.estimators.base import BaseEstimator
from offline_eval.logs import LoggedBandit

UNIFORM_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Replay(BaseEstimator):
    """Replay: keep round ``i`` with probability ``pi(a_i | x_i) / max pi`` and average kept rewards.

    Valid only when the logger was uniform over the actions; with a deterministic target this is
    Li et al.'s replay (keep rounds where the target picks the logged action). ``n`` of the
    estimate is the number of accepted rounds.

    Examples
    --------
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

    def _round_rewards(self, logs: LoggedBandit, target_probs: np.ndarray) -> RoundRewards:
        uniform = 1.0 / logs.n_actions
        if not np.allclose(logs.propensity, uniform, rtol=0, atol=UNIFORM_TOLERANCE):
            msg = (
                f"Replay needs uniformly logged data (every propensity 1/{logs.n_actions}); "
                "use IPS/DR for other loggers"
            )
            raise LoggedDataError(msg)
        picked = target_probs[np.arange(logs.n_rounds), logs.action]
        bound = float(target_probs.max()) if logs.n_rounds else 1.0
        u = np.random.default_rng(self.seed).random(logs.n_rounds)
        accepted = u * bound < picked
        return RoundRewards(logs.reward[accepted])

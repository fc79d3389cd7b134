"""Uniform random policy: the baseline every learner must beat."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bandit.policies.base import Policy
from bandit.types import Action, Features


class UniformPolicy(Policy):
    """Chooses uniformly among the eligible actions.

    Examples
    --------
    >>> from bandit.types import Action
    >>> d = UniformPolicy(seed=1).choose({}, [Action("a"), Action("b")], event_id="e1")
    >>> d.pmf
    (0.5, 0.5)
    """

    name = "uniform"

    def _expected_rewards(self, context: Features, actions: Sequence[Action]) -> np.ndarray:
        means = []
        for action in actions:
            n, s, _ = self._action_stats.get(action.id, (0.0, 0.0, 0.0))
            means.append(s / n if n else 0.5)
        return np.asarray(means, dtype=float)

    def _pmf(
        self, context: Features, actions: Sequence[Action], expected: np.ndarray
    ) -> np.ndarray:
        return np.full(len(actions), 1.0 / len(actions))

    def _learn(
        self,
        context: Features,
        actions: Sequence[Action],
        index: int,
        propensity: float,
        reward: float,
    ) -> None:
        return None

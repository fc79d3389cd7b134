"""Uniform random policy: the baseline every learner must beat."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from bandit.policies.base import StaticPolicy
from bandit.types import Action, Features


class UniformPolicy(StaticPolicy):
    """Chooses uniformly among the eligible actions.

    Examples
    --------
    >>> from bandit.types import Action
    >>> d = UniformPolicy(seed=1).choose({}, [Action("a"), Action("b")], event_id="e1")
    >>> d.pmf
    (0.5, 0.5)
    """

    name = "uniform"

    def _pmf(
        self, context: Features, actions: Sequence[Action], expected: np.ndarray
    ) -> np.ndarray:
        return np.full(len(actions), 1.0 / len(actions))

    def batch_probabilities(
        self, columns: Mapping[str, np.ndarray], eligible: np.ndarray, actions: Sequence[Action]
    ) -> np.ndarray:
        """Uniform over each round's eligible actions, ``(n, K)`` (see
        :class:`~bandit.policies.batch.BatchProbabilities`).

        Examples
        --------
        >>> UniformPolicy().batch_probabilities({}, np.array([[True, False]]), []).tolist()
        [[1.0, 0.0]]
        """
        k = eligible.sum(axis=1).astype(float)
        # apply_floor of 1/k each: floor / k + (1 - floor) / k, on the eligible actions
        value = self.floor / k + (1.0 - self.floor) * (1.0 / k)
        out: np.ndarray = eligible * value[:, None]
        return out

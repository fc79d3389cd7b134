"""Uniform random policy: the baseline every learner must beat."""

from __future__ import annotations

from collections.abc import Sequence

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

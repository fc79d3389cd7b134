"""Probabilities of a static policy for many rounds at once (offline evaluation of big logs).

A policy that can score a block of rounds without a Python loop per round implements
:class:`BatchProbabilities` (``uniform`` and ``practice`` do); offline evaluation of logs with
millions of rounds and hundreds of offers calls it once per chunk of rounds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from bandit.types import Action


@runtime_checkable
class BatchProbabilities(Protocol):
    """A policy whose floored pmf over the eligible actions can be computed for many rounds."""

    def batch_probabilities(
        self, columns: Mapping[str, np.ndarray], eligible: np.ndarray, actions: Sequence[Action]
    ) -> np.ndarray:
        """``(n, K)`` pmf (0 where not eligible), equal to :meth:`Policy.probabilities` per row.

        Parameters
        ----------
        columns
            Context features by name, each shape ``(n,)``.
        eligible
            ``(n, K)``: the eligible actions of each round (at least one per row), boolean or
            0.0 / 1.0.
        actions
            The ``K`` actions, in column order.
        """
        ...

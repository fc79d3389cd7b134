"""Validation moment for off-policy evaluation: naive comparisons are confounded.

domain.md 5.3 asks that a naive comparison of participants vs non-participants recovers the
*wrong* sign for selected programmes (caseworkers select on the case, hence on the latent type),
so estimators are tested against real confounding. For each action in a log this compares the
naive difference in mean reward with the TRUE average effect on the treated (ATT), both against
the standard contact (action 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simulator.logs import SimulatedLogs


@dataclass(frozen=True, slots=True)
class NaiveComparison:
    """Naive and true effect of one action vs the standard contact."""

    family: str
    n: int
    naive: float
    naive_se: float
    true_att: float

    @property
    def wrong_sign(self) -> bool:
        """True when the naive estimate is significantly (2 SE) of the opposite sign."""
        return self.naive * self.true_att < 0 and abs(self.naive) > 2 * self.naive_se


class NaiveAccumulator:
    """Running sums behind :func:`naive_vs_true`, fed block by block (bounded memory).

    Per action: rounds, reward sum, squared reward sum and the summed true effect
    ``truth[:, k] - truth[:, baseline]`` over the rounds that logged it.
    """

    def __init__(self, n_actions: int, *, baseline: int = 0) -> None:
        self.baseline = baseline
        self.n = np.zeros(n_actions)
        self.total = np.zeros(n_actions)
        self.squares = np.zeros(n_actions)
        self.effect = np.zeros(n_actions)

    def add(self, action: np.ndarray, reward: np.ndarray, truth: np.ndarray) -> None:
        """Add rounds: logged action and reward, shape ``(n,)``; truth, shape ``(n, K)``."""
        k = self.n.shape[0]
        effect = truth[np.arange(action.shape[0]), action] - truth[:, self.baseline]
        self.n += np.bincount(action, minlength=k)
        self.total += np.bincount(action, weights=reward, minlength=k)
        self.squares += np.bincount(action, weights=reward * reward, minlength=k)
        self.effect += np.bincount(action, weights=effect, minlength=k)

    def result(self, families: Sequence[str]) -> list[NaiveComparison]:
        """One comparison per action with at least two rounds (none if the baseline has fewer)."""
        b = self.baseline
        n0 = self.n[b]
        if n0 < 2:  # noqa: PLR2004
            return []
        mean0, var0 = _mean_var(n0, self.total[b], self.squares[b])
        out = []
        for k, family in enumerate(families):
            n = int(self.n[k])
            if n < 2:  # noqa: PLR2004
                continue
            mean, var = _mean_var(n, self.total[k], self.squares[k])
            se = math.sqrt(var / n + var0 / n0)
            out.append(NaiveComparison(family, n, mean - mean0, se, float(self.effect[k] / n)))
        return out


def _mean_var(n: float, total: float, squares: float) -> tuple[float, float]:
    mean = total / n
    return float(mean), float(max(squares - n * mean * mean, 0.0) / (n - 1))


def naive_vs_true(logs: SimulatedLogs, *, baseline: int = 0) -> list[NaiveComparison]:
    """Naive participant/non-participant differences vs the true ATT, one per action.

    Examples
    --------
    >>> from simulator.logs import generate_logs
    >>> rows = naive_vs_true(generate_logs(500, seed=2))
    >>> rows[0].family, rows[0].naive
    ('standard_contact', 0.0)
    """
    acc = NaiveAccumulator(len(logs.action_families), baseline=baseline)
    acc.add(
        logs.frame["action"].to_numpy(),
        logs.frame["reward"].to_numpy(dtype=float),
        logs.expected_reward_matrix,
    )
    return acc.result(logs.action_families)

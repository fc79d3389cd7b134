"""Validation moment for off-policy evaluation: naive comparisons are confounded.

domain.md 5.3 asks that a naive comparison of participants vs non-participants recovers the
*wrong* sign for selected programmes (caseworkers select on the case, hence on the latent type),
so estimators are tested against real confounding. For each action in a log this compares the
naive difference in mean reward with the TRUE average effect on the treated (ATT), both against
the standard contact (action 0).
"""

from __future__ import annotations

import math
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


def naive_vs_true(logs: SimulatedLogs, *, baseline: int = 0) -> list[NaiveComparison]:
    """Naive participant/non-participant differences vs the true ATT, one per action.

    Examples
    --------
    >>> from simulator.logs import generate_logs
    >>> rows = naive_vs_true(generate_logs(500, seed=2))
    >>> rows[0].family, rows[0].naive
    ('standard_contact', 0.0)
    """
    action = logs.frame["action"].to_numpy()
    reward = logs.frame["reward"].to_numpy(dtype=float)
    truth = logs.expected_reward_matrix
    base = action == baseline
    r0 = reward[base]
    out = []
    for k, family in enumerate(logs.action_families):
        chosen = action == k
        n = int(chosen.sum())
        if n < 2 or r0.size < 2:  # noqa: PLR2004
            continue
        rk = reward[chosen]
        se = math.sqrt(rk.var(ddof=1) / n + r0.var(ddof=1) / r0.size)
        att = float(np.mean(truth[chosen, k] - truth[chosen, baseline]))
        out.append(NaiveComparison(family, n, float(rk.mean() - r0.mean()), se, att))
    return out

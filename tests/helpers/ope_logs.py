"""Synthetic bandit logs shared by the OPE interval tests."""

from __future__ import annotations

import numpy as np

from offline_eval.logs import LoggedBandit

RARE_TARGET_ACTIONS = 10


def rare_target_log(n: int, rng: np.random.Generator) -> tuple[LoggedBandit, np.ndarray, float]:
    """Target: always action 0, which the logger takes with probability 0.01-0.03 (ESS ~ 40).

    Returns the log, the target's probabilities and its true value.
    """
    k = RARE_TARGET_ACTIONS
    x = rng.random(n)
    mu = np.full((n, k), 0.99 / (k - 1))
    mu[:, 0] = 0.01 + 0.02 * x
    mu /= mu.sum(axis=1, keepdims=True)
    q = np.clip(0.55 + 0.4 * x[:, None] * np.linspace(-1, 1, k)[None, :], 0, 1)
    q[:, 0] = 0.2 + 0.7 * x
    a = (rng.random(n)[:, None] > mu.cumsum(axis=1)).sum(axis=1).clip(max=k - 1)
    r = (rng.random(n) < q[np.arange(n), a]).astype(float)
    pi = np.zeros((n, k))
    pi[:, 0] = 1.0
    logs = LoggedBandit(x[:, None], a, r, mu[np.arange(n), a], k, pmf=mu)
    return logs, pi, float((pi * q).sum(axis=1).mean())

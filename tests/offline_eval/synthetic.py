"""A small synthetic logged-bandit environment with known truth (for accuracy tests).

Contexts are drawn from ``n_types`` discrete context types with known probabilities, so the
true value of any target policy ``V = sum_t P(t) sum_a pi(a|t) q(t, a)`` is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from offline_eval.logs import LoggedBandit


@dataclass(frozen=True)
class SyntheticEnv:
    """Known expected-reward matrix ``q`` (types x actions), logger and target per type."""

    features: np.ndarray  # (n_types, d)
    type_probs: np.ndarray  # (n_types,)
    q: np.ndarray  # (n_types, K) expected reward (Bernoulli mean)
    logger: np.ndarray  # (n_types, K)
    target: np.ndarray  # (n_types, K)

    @property
    def n_actions(self) -> int:
        return int(self.q.shape[1])

    def true_value(self, policy: np.ndarray | None = None) -> float:
        pi = self.target if policy is None else policy
        return float(self.type_probs @ (pi * self.q).sum(axis=1))

    def sample(self, n: int, seed: int) -> tuple[LoggedBandit, np.ndarray]:
        """``n`` logged rounds and the target probabilities on them."""
        rng = np.random.default_rng(seed)
        types = rng.choice(self.type_probs.shape[0], size=n, p=self.type_probs)
        cdf = np.cumsum(self.logger[types], axis=1)
        action = (rng.random(n)[:, None] > cdf).sum(axis=1).clip(0, self.n_actions - 1)
        reward = (rng.random(n) < self.q[types, action]).astype(float)
        logs = LoggedBandit(
            context=self.features[types],
            action=action.astype(np.int64),
            reward=reward,
            propensity=self.logger[types, action],
            n_actions=self.n_actions,
            pmf=self.logger[types],
        )
        return logs, self.target[types]


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def make_env(
    *,
    n_types: int = 30,
    n_actions: int = 5,
    d: int = 3,
    seed: int = 0,
    uniform_logger: bool = False,
) -> SyntheticEnv:
    """A random environment; the target prefers good actions, the logger is softmax + floor."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n_types, d))
    type_probs = rng.dirichlet(np.full(n_types, 5.0))
    theta = rng.normal(scale=0.8, size=(d, n_actions))
    q = 1.0 / (1.0 + np.exp(-(features @ theta + rng.normal(scale=0.3, size=n_actions))))
    if uniform_logger:
        logger = np.full((n_types, n_actions), 1.0 / n_actions)
    else:
        logger = 0.7 * _softmax(features @ rng.normal(size=(d, n_actions))) + 0.3 / n_actions
    target = 0.9 * _softmax(3.0 * q) + 0.1 / n_actions
    return SyntheticEnv(features, type_probs, q, logger, target)

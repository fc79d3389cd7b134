"""Reward models for the model-based estimators (DM, DR, SNDR, Switch-DR).

:class:`RidgeRewardModel` is a per-action ridge regression on standardised context features,
cross-fitted (each round is predicted by a model that never saw it), written in numpy so it is
deterministic and fast on millions of rounds. :class:`PrecomputedRewards` wraps a given
``q_hat`` matrix (e.g. the same ``estimated_rewards_by_reg_model`` handed to OBP).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from bandit.errors import InvalidInputError
from offline_eval.logs import LoggedBandit


class RewardModel(Protocol):
    """Anything that predicts the expected reward of every action in every logged round."""

    def predict_matrix(self, logs: LoggedBandit) -> np.ndarray:
        """``q_hat``, shape ``(n_rounds, n_actions)``."""
        ...


@dataclass(frozen=True, eq=False)
class PrecomputedRewards:
    """A fixed ``q_hat`` matrix, shape ``(n_rounds, n_actions)``.

    Examples
    --------
    >>> q = PrecomputedRewards(np.zeros((3, 2)))
    >>> q.q_hat.shape
    (3, 2)
    """

    q_hat: np.ndarray

    def predict_matrix(self, logs: LoggedBandit) -> np.ndarray:
        """Return ``q_hat`` after checking its shape against ``logs``."""
        expected = (logs.n_rounds, logs.n_actions)
        if self.q_hat.shape != expected:
            msg = f"Expected `q_hat.shape == {expected}`, got {self.q_hat.shape}"
            raise InvalidInputError(msg)
        return self.q_hat


@dataclass(frozen=True)
class RidgeRewardModel:
    """Cross-fitted per-action ridge regression ``E[r | x, a] = [1, z(x)] @ beta_a``.

    Parameters
    ----------
    alpha
        Ridge penalty on the (standardised) slopes; the intercept is not penalised.
    n_folds
        Cross-fitting folds (1 = fit and predict on all rounds).
    seed
        Seed of the fold assignment.
    clip
        Predictions are clipped to the observed reward range when True.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(400, 1)); a = rng.integers(0, 2, 400)
    >>> r = np.where(a == 1, 1.0 + 2.0 * x[:, 0], 0.5)
    >>> logs = LoggedBandit(x, a, r, np.full(400, 0.5), 2)
    >>> q = RidgeRewardModel(alpha=1e-6, n_folds=2).predict_matrix(logs)
    >>> bool(np.allclose(q[:, 1], 1.0 + 2.0 * x[:, 0], atol=1e-3)), bool(np.allclose(q[:, 0], 0.5))
    (True, True)
    """

    alpha: float = 1.0
    n_folds: int = 2
    seed: int = 0
    clip: bool = True

    def __post_init__(self) -> None:
        if self.alpha < 0 or self.n_folds < 1:
            msg = f"Expected alpha >= 0 and n_folds >= 1, got {self.alpha}, {self.n_folds}"
            raise InvalidInputError(msg)

    def predict_matrix(self, logs: LoggedBandit) -> np.ndarray:
        """Cross-fitted ``q_hat``, shape ``(n_rounds, n_actions)``."""
        design = _design(logs.context)
        n, k = logs.n_rounds, logs.n_actions
        folds = (
            np.zeros(n, dtype=int)
            if self.n_folds == 1
            else np.random.default_rng(self.seed).integers(0, self.n_folds, n)
        )
        q = np.empty((n, k))
        for f in range(self.n_folds):
            test = folds == f
            train = ~test if self.n_folds > 1 else test
            beta = self._fit(design[train], logs.action[train], logs.reward[train], k)
            q[test] = design[test] @ beta
        if self.clip and n:
            q = np.clip(q, logs.reward.min(), logs.reward.max())
        return q

    def _fit(self, x: np.ndarray, action: np.ndarray, reward: np.ndarray, k: int) -> np.ndarray:
        d = x.shape[1]
        penalty = self.alpha * np.eye(d)
        penalty[0, 0] = 0.0
        beta = np.zeros((d, k))
        overall = float(reward.mean()) if reward.size else 0.0
        for a in range(k):
            rows = action == a
            if not rows.any():
                beta[0, a] = overall
                continue
            xa, ya = x[rows], reward[rows]
            gram = xa.T @ xa + penalty + 1e-9 * np.eye(d)
            beta[:, a] = np.linalg.solve(gram, xa.T @ ya)
        return beta


def _design(context: np.ndarray) -> np.ndarray:
    mean = context.mean(axis=0) if context.shape[0] else np.zeros(context.shape[1])
    std = context.std(axis=0) if context.shape[0] else np.ones(context.shape[1])
    std = np.where(std > 0, std, 1.0)
    z = (context - mean) / std
    return np.column_stack([np.ones(context.shape[0]), z])

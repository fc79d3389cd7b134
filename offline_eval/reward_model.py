"""Reward models for the model-based estimators (DM, DR, SNDR, Switch-DR).

:class:`RidgeRewardModel` is a per-action ridge regression on standardised context features,
cross-fitted (each round is predicted by a model that never saw it), written in numpy so it is
deterministic and fast on millions of rounds. :class:`PrecomputedRewards` wraps a given
``q_hat`` matrix (e.g. the same ``estimated_rewards_by_reg_model`` handed to OBP).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
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
        n = logs.n_rounds
        step = FIT_CHUNK_ROWS

        def chunks() -> Iterator[LoggedBandit]:
            if n <= step:
                yield logs
                return
            for start in range(0, n, step):
                yield logs.subset(np.arange(start, min(start + step, n)))

        fitted = self.fit(chunks, n, logs.n_actions)
        if n <= step:
            return fitted.predict(logs, 0)
        return np.concatenate([fitted.predict(c, i * step) for i, c in enumerate(chunks())])

    def fit(
        self, chunks: Callable[[], Iterable[LoggedBandit]], n_rounds: int, n_actions: int
    ) -> FittedRidge:
        """Fit on rounds given chunk by chunk, in bounded memory (two passes over ``chunks()``).

        The first pass gathers the context means and standard deviations (merged per chunk,
        Chan et al.) and the reward range, the second the per-(fold, action) Gram matrices
        ``Z'Z`` and ``Z'r`` of the standardised design ``Z = [1, z(x)]``; each fold's model is
        solved from the other folds' sums. Folds are drawn for all ``n_rounds`` at once (as
        :meth:`predict_matrix` always did), so the fit does not depend on the chunking beyond
        floating-point summation order.
        """
        stats = _ContextStats()
        for chunk in chunks():
            stats.add(chunk.context, chunk.reward)
        if stats.n != n_rounds:
            msg = f"Expected {n_rounds} rounds from the chunks, got {stats.n}"
            raise InvalidInputError(msg)
        folds = (
            np.zeros(n_rounds, dtype=np.int8)
            if self.n_folds == 1
            else np.random.default_rng(self.seed)
            .integers(0, self.n_folds, n_rounds)
            .astype(np.int8)
        )
        grams = _Grams(self.n_folds, n_actions, stats.width + 1)
        start = 0
        for chunk in chunks():
            stop = start + chunk.n_rounds
            grams.add(stats.design(chunk.context), chunk.action, chunk.reward, folds[start:stop])
            start = stop
        beta = np.stack([grams.solve(f, self.alpha) for f in range(self.n_folds)])
        lo, hi = (stats.low, stats.high) if self.clip and n_rounds else (-np.inf, np.inf)
        return FittedRidge(stats.mean(), stats.std(), beta, folds, lo, hi)


FIT_CHUNK_ROWS = 65_536
"""Rows per chunk when :meth:`RidgeRewardModel.predict_matrix` fits an in-memory log."""


@dataclass(frozen=True, eq=False)
class FittedRidge:
    """A fitted :class:`RidgeRewardModel`: standardisation, one ``beta`` per fold, folds."""

    mean: np.ndarray
    std: np.ndarray
    beta: np.ndarray
    """Shape ``(n_folds, 1 + n_features, n_actions)``."""
    folds: np.ndarray
    low: float
    high: float

    def predict(self, chunk: LoggedBandit, start: int) -> np.ndarray:
        """Cross-fitted ``q_hat`` of the rounds ``start .. start + n`` of the fit, ``(n, K)``."""
        z = _standardise(chunk.context, self.mean, self.std)
        folds = self.folds[start : start + chunk.n_rounds]
        n_folds = self.beta.shape[0]
        if n_folds == 1:
            q: np.ndarray = z @ self.beta[0]
        else:
            q = np.empty((chunk.n_rounds, self.beta.shape[2]))
            for f in range(n_folds):
                rows = np.flatnonzero(folds == f)
                q[rows] = z[rows] @ self.beta[f]
        if math.isfinite(self.low):
            np.clip(q, self.low, self.high, out=q)
        return q


class _ContextStats:
    """Running count, mean and centred sum of squares of the context columns (Chan et al.'s
    pairwise merge), plus the reward range."""

    def __init__(self) -> None:
        self.n = 0
        self._mean: np.ndarray | None = None
        self._m2: np.ndarray | None = None
        self.width = 0
        self.low, self.high = math.inf, -math.inf

    def add(self, context: np.ndarray, reward: np.ndarray) -> None:
        m = context.shape[0]
        self.width = context.shape[1]
        if m == 0:
            return
        mean = context.mean(axis=0)
        m2 = ((context - mean) ** 2).sum(axis=0)
        self.low = min(self.low, float(reward.min()))
        self.high = max(self.high, float(reward.max()))
        if self._mean is None or self._m2 is None:
            self.n, self._mean, self._m2 = m, mean, m2
            return
        total = self.n + m
        delta = mean - self._mean
        self._mean = self._mean + delta * (m / total)
        self._m2 = self._m2 + m2 + delta * delta * (self.n * m / total)
        self.n = total

    def mean(self) -> np.ndarray:
        return np.zeros(self.width) if self._mean is None else self._mean

    def std(self) -> np.ndarray:
        if self._m2 is None:
            return np.ones(self.width)
        std = np.sqrt(self._m2 / self.n)
        out: np.ndarray = np.where(std > 0, std, 1.0)
        return out

    def design(self, context: np.ndarray) -> np.ndarray:
        return _standardise(context, self.mean(), self.std())


class _Grams:
    """Per-(fold, action) sums ``Z'Z``, ``Z'r``, counts and per-fold reward sums."""

    def __init__(self, n_folds: int, k: int, d: int) -> None:
        self.k = k
        self.gram = np.zeros((n_folds, k, d, d))
        self.xty = np.zeros((n_folds, k, d))
        self.count = np.zeros((n_folds, k))
        self.reward = np.zeros(n_folds)

    def add(self, z: np.ndarray, action: np.ndarray, reward: np.ndarray, folds: np.ndarray) -> None:
        key = folds.astype(np.int64) * self.k + action
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
        stops = np.r_[starts[1:], sorted_key.shape[0]]
        zs, rs = z[order], reward[order]
        for lo, hi in zip(starts.tolist(), stops.tolist(), strict=True):
            f, a = divmod(int(sorted_key[lo]), self.k)
            zg, rg = zs[lo:hi], rs[lo:hi]
            self.gram[f, a] += zg.T @ zg
            self.xty[f, a] += zg.T @ rg
            self.count[f, a] += hi - lo
        self.reward += np.bincount(folds, weights=reward, minlength=self.reward.shape[0])

    def solve(self, fold: int, alpha: float) -> np.ndarray:
        """``beta`` of the model that predicts ``fold``: fitted on the other folds (or on all
        rounds with one fold)."""
        n_folds, k, d, _ = self.gram.shape
        train = [g for g in range(n_folds) if g != fold] or [fold]
        gram = self.gram[train].sum(axis=0)
        xty = self.xty[train].sum(axis=0)
        count = self.count[train].sum(axis=0)
        n_train = float(count.sum())
        overall = float(self.reward[train].sum()) / n_train if n_train else 0.0
        penalty = alpha * np.eye(d)
        penalty[0, 0] = 0.0
        beta = np.zeros((d, k))
        for a in range(k):
            if count[a] == 0:
                beta[0, a] = overall
                continue
            beta[:, a] = np.linalg.solve(gram[a] + penalty + 1e-9 * np.eye(d), xty[a])
        return beta


def _standardise(context: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    out = np.empty((context.shape[0], context.shape[1] + 1))
    out[:, 0] = 1.0
    np.subtract(context, mean, out=out[:, 1:])
    out[:, 1:] /= std
    return out

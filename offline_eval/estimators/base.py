"""The estimator interface: ``estimate(logs, target_probs) -> Estimate``.

Subclasses are frozen dataclasses of hyperparameters with ``name: ClassVar[str]`` and implement
only :meth:`BaseEstimator.from_terms`: the estimator's per-round contributions from the
:class:`RoundTerms` every estimator combines (importance weight, DM value, residual and the
logger's second moment). In memory the terms come from the whole target matrix
(:func:`round_terms`); :mod:`offline_eval.streaming` builds the same terms chunk by chunk, so
both paths share one formula per estimator. The interval comes from :mod:`offline_eval.ci`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from offline_eval.ci import CIConfig, Estimate, RoundRewards, interval
from offline_eval.logs import LoggedBandit
from offline_eval.reward_model import RewardModel, RidgeRewardModel


class BaseEstimator(ABC):
    """Base class of the off-policy estimators."""

    name: ClassVar[str]

    def estimate(
        self, logs: LoggedBandit, target_probs: np.ndarray, ci: CIConfig | None = None
    ) -> Estimate:
        """Estimate the value of the target policy on ``logs`` with an interval.

        Parameters
        ----------
        logs
            Logged bandit feedback.
        target_probs
            Target policy's action probabilities, shape ``(n_rounds, n_actions)``.
        ci
            Interval method (default: analytic 95 %).
        """
        logs.check_target(target_probs)
        return interval(self._round_rewards(logs, target_probs), ci, estimator=self.name)

    def round_rewards(self, logs: LoggedBandit, target_probs: np.ndarray) -> RoundRewards:
        """Validated per-round contributions (for custom intervals or diagnostics)."""
        logs.check_target(target_probs)
        return self._round_rewards(logs, target_probs)

    def _round_rewards(self, logs: LoggedBandit, target_probs: np.ndarray) -> RoundRewards:
        """Per-round contributions; the estimate is their mean (or ratio of sums)."""
        return self.from_terms(round_terms(logs, target_probs, self.model()))

    def model(self) -> RewardModel | None:
        """The reward model the estimator needs (``None``: none)."""
        return None

    def logger_variant(self) -> tuple[float, float | None]:
        """``(max_weight, switch_tau)`` of the weights in its logger second moment."""
        return math.inf, None

    @abstractmethod
    def from_terms(self, terms: RoundTerms) -> RoundRewards:
        """Per-round contributions from the shared per-round terms."""


LoggerMoment = Callable[[np.ndarray, float, "float | None"], "float | None"]
"""``(squared_term, max_weight, switch_tau) -> second moment`` (see :func:`logger_variance`)."""


@dataclass(frozen=True)
class RoundTerms:
    """The per-round quantities every estimator combines, each shape ``(n_rounds,)``.

    Parameters
    ----------
    action, reward, propensity
        The logged rounds.
    picked
        The target's probability of the logged action, ``pi(a_i | x_i)``.
    n_actions
        Number of actions.
    max_target
        Largest target probability anywhere (Replay's acceptance bound).
    dm, residual
        ``sum_a pi(a|x_i) q_hat(x_i, a)`` and ``r_i - q_hat(x_i, a_i)`` (model-based estimators).
    logger_moment
        The logger's second moment of a weighted term (``None``: no logger pmf in the log).
    """

    action: np.ndarray
    reward: np.ndarray
    propensity: np.ndarray
    picked: np.ndarray
    n_actions: int
    max_target: float
    dm: np.ndarray | None = None
    residual: np.ndarray | None = None
    logger_moment: LoggerMoment | None = None

    @property
    def n(self) -> int:
        """Number of rounds."""
        return int(self.action.shape[0])

    def weights(self) -> np.ndarray:
        """Importance weights ``pi(a_i | x_i) / propensity_i``."""
        w: np.ndarray = self.picked / self.propensity
        return w

    def model_terms(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(dm, w, residual)`` for the doubly robust estimators."""
        if self.dm is None or self.residual is None:
            msg = "These terms were built without a reward model"
            raise ValueError(msg)
        return self.dm, self.weights(), self.residual

    def second_moment(
        self,
        squared_term: np.ndarray,
        *,
        max_weight: float = math.inf,
        switch_tau: float | None = None,
    ) -> float | None:
        """The logger's second moment of ``w t`` given ``t^2`` (see :func:`logger_variance`)."""
        if self.logger_moment is None:
            return None
        return self.logger_moment(squared_term, max_weight, switch_tau)


def round_terms(
    logs: LoggedBandit,
    target_probs: np.ndarray,
    reward_model: RewardModel | None = None,
    q_hat: np.ndarray | None = None,
) -> RoundTerms:
    """The :class:`RoundTerms` of a target on an in-memory log (``q_hat``: the reward model's
    predictions on ``logs`` if already computed)."""
    picked = target_probs[np.arange(logs.n_rounds), logs.action]
    dm = residual = None
    if reward_model is not None:
        q_hat = reward_model.predict_matrix(logs) if q_hat is None else q_hat
        dm = np.einsum("ij,ij->i", target_probs, q_hat)
        residual = logs.reward - factual(q_hat, logs.action)

    def moment(
        squared_term: np.ndarray, max_weight: float, switch_tau: float | None
    ) -> float | None:
        return logger_variance(
            logs, target_probs, squared_term, max_weight=max_weight, switch_tau=switch_tau
        )

    return RoundTerms(
        action=logs.action,
        reward=logs.reward,
        propensity=logs.propensity,
        picked=picked,
        n_actions=logs.n_actions,
        max_target=float(target_probs.max()) if logs.n_rounds else 1.0,
        dm=dm,
        residual=residual,
        logger_moment=None if logs.pmf is None else moment,
    )


def default_reward_model() -> RewardModel:
    """The reward model used when none is given: cross-fitted ridge."""
    return RidgeRewardModel()


def factual(q_hat: np.ndarray, action: np.ndarray) -> np.ndarray:
    """``q_hat[i, action[i]]`` per round."""
    picked: np.ndarray = q_hat[np.arange(action.shape[0]), action]
    return picked


_ROWS_PER_CHUNK = 20_000


def logger_variance(
    logs: LoggedBandit,
    target_probs: np.ndarray,
    squared_term: np.ndarray,
    *,
    max_weight: float = np.inf,
    switch_tau: float | None = None,
) -> float | None:
    """Second moment of the weighted term that the known logger implies, per round.

    A weighted estimator's per-round term is ``w_i t_i`` with ``w_i = pi(a_i|x_i) / mu(a_i|x_i)``.
    Its expected square given the context is ``sum_a pi(a|x)^2 / mu(a|x) E[t^2 | x, a]``, which
    depends on every action the logger *could* have taken, not only on the rounds where a rare,
    heavily weighted action happened to be drawn. ``E[t^2 | x, a]`` is estimated by the mean of
    ``squared_term`` over the rounds that logged ``a`` (shrunk towards the overall mean with one
    pseudo-round). The result is a floor for the empirical variance of low-ESS targets, where a
    sample that drew few heavily weighted rounds otherwise under-states its own variance.

    Returns ``None`` when the log carries no logger pmf (only the logged action's propensity).

    Parameters
    ----------
    logs
        The logged rounds (with ``pmf``).
    target_probs
        Target probabilities, shape ``(n_rounds, n_actions)``.
    squared_term
        ``t_i^2`` per round, shape ``(n_rounds,)``.
    max_weight
        Weight clipping of the estimator (IPS), applied to every action's weight.
    switch_tau
        Switch-DR threshold: weights above it contribute nothing.
    """
    if logs.pmf is None or logs.n_rounds == 0:
        return None
    per_action = per_action_moment(logs.action, squared_term, logs.n_actions)
    acc = 0.0
    for start in range(0, logs.n_rounds, _ROWS_PER_CHUNK):
        mu = logs.pmf[start : start + _ROWS_PER_CHUNK]
        pi = target_probs[start : start + _ROWS_PER_CHUNK]
        with np.errstate(divide="ignore", invalid="ignore"):
            w = np.where(mu > 0, pi / mu, 0.0)
        w = np.minimum(w, max_weight)
        if switch_tau is not None:
            w = np.where(w <= switch_tau, w, 0.0)
        acc += float(((mu * w * w) @ per_action).sum())
    return acc / logs.n_rounds


def per_action_moment(action: np.ndarray, squared_term: np.ndarray, n_actions: int) -> np.ndarray:
    """``E[t^2 | a]`` per action: the mean of ``squared_term`` over the rounds that logged
    ``a``, shrunk towards the overall mean with one pseudo-round (see :func:`logger_variance`)."""
    count = np.bincount(action, minlength=n_actions).astype(float)
    total = np.bincount(action, weights=squared_term, minlength=n_actions)
    overall = float(squared_term.mean())
    out: np.ndarray = (total + overall) / (count + 1.0)
    return out


def logger_weight_sums(
    pmf: np.ndarray,
    target_probs: np.ndarray,
    *,
    max_weight: float = math.inf,
    switch_tau: float | None = None,
) -> np.ndarray:
    """``sum_i mu(a|x_i) w(a|x_i)^2`` per action over the rows given, shape ``(K,)``.

    :func:`logger_variance` is ``sums @ per_action_moment(...) / n``, so a streamed log keeps
    these sums (one per weight variant) instead of the target matrix.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(pmf > 0, target_probs / pmf, 0.0)
    w = np.minimum(w, max_weight)
    if switch_tau is not None:
        w = np.where(w <= switch_tau, w, 0.0)
    out: np.ndarray = (pmf * w * w).sum(axis=0)
    return out


def dm_variance(dm: np.ndarray) -> float:
    """Sample variance of the direct-method part across rounds (0 for fewer than 2 rounds)."""
    return float(dm.var(ddof=1)) if dm.shape[0] > 1 else 0.0

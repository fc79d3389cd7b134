"""The policy interface (template method) shared by every policy.

:meth:`Policy.choose` validates input, asks the subclass for expected rewards and a pmf, applies
the probability floor, samples deterministically from ``(seed, event_id)`` and returns a
:class:`~bandit.types.Decision`. :meth:`Policy.learn` validates the reward and forwards one
logged interaction to the subclass. Subclasses implement only ``_expected_rewards``, ``_pmf``,
``_learn`` and, if they hold a model, ``_dump_state`` / ``_load_state``.
"""

from __future__ import annotations

import hashlib
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np

from bandit.errors import InvalidInputError, ModelFormatError
from bandit.policies.smallk import apply_floor_list, sample_index
from bandit.types import Action, Decision, Features

SNAPSHOT_FORMAT = 1
PRIOR_STRENGTH = 5.0
"""Pseudo-observations of the overall mean reward in the shown estimate of each action."""
MIN_TRACKED = 50
"""Settled outcomes with a tracked prediction before the model's estimates get an interval
narrower than [0, 1]."""
ERROR_WINDOW = 5000.0
"""Effective number of recent outcomes the model's error is estimated from (older ones fade:
an early, barely trained model's errors would otherwise widen the intervals for good)."""
MODEL_ERROR_FLOOR = 0.02
"""Smallest model error (probability points) assumed in the shown intervals."""
FAMILY_ERROR_WINDOW = 2000.0
"""Effective number of recent outcomes per offer family its mean residual is estimated from."""
_Z95 = 1.959963984540054
_U64 = float(2**64)


@dataclass(frozen=True, slots=True)
class RewardEstimate:
    """Expected reward of one action with a 95 % interval (for explanations)."""

    mean: float
    low: float
    high: float
    n: int


def deterministic_uniform(seed: int, event_id: str) -> float:
    """A uniform number in [0, 1) fixed by ``(seed, event_id)``.

    Sampling from it makes the choice for an event reproducible regardless of call order.
    """
    digest = hashlib.blake2b(f"{seed}:{event_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _U64


def apply_floor(pmf: np.ndarray, floor: float, weights: np.ndarray | None = None) -> np.ndarray:
    """Spread a total exploration mass ``floor`` uniformly over the ``K`` actions.

    ``p' = floor / K + (1 - floor) p`` (or ``floor * w / sum(w) + (1 - floor) p`` with
    exploration ``weights``): every action keeps at least ``floor / K`` and the
    policy keeps ``1 - floor`` of the mass to concentrate on its best offers, whatever ``K``
    is. (A per-action floor ``f`` that must add up to at most 1 forces the uniform
    distribution once ``K >= 1/f``: 50 offers at ``f = 0.02``.) The ordering of ``p`` is kept
    and the result sums to 1. A non-finite or empty pmf becomes uniform.

    Examples
    --------
    >>> apply_floor(np.array([1.0, 0.0, 0.0]), 0.3).round(3).tolist()
    [0.8, 0.1, 0.1]
    >>> apply_floor(np.array([1.0] + [0.0] * 299), 0.1)[0].round(4)
    np.float64(0.9003)
    """
    k = pmf.shape[0]
    total = float(pmf.sum())
    if not math.isfinite(total) or total <= 0 or float(pmf.min()) < 0:
        pmf = np.full(k, 1.0 / k)
    else:
        pmf = pmf / total
    if weights is None:
        floored: np.ndarray = floor / k + (1.0 - floor) * pmf
        return floored
    spread = weights / float(weights.sum())
    mixed: np.ndarray = floor * spread + (1.0 - floor) * pmf
    return mixed


def min_probability(floor: float, k: int) -> float:
    """The smallest probability :func:`apply_floor` gives one of ``k`` actions when the mass
    is spread uniformly (see :meth:`Policy.exploration_probabilities` otherwise)."""
    return floor / k


_MAX_ACTION_SETS = 8


class ActionSet:
    """A validated tuple of eligible actions with per-set data a policy caches (e.g. the
    formatted VW action block, family codes, exploration weights).

    Examples
    --------
    >>> ActionSet((Action("a"),)).actions[0].id
    'a'
    """

    __slots__ = ("actions", "cache")

    def __init__(self, actions: tuple[Action, ...]) -> None:
        self.actions = actions
        self.cache: dict[str, Any] = {}


class Policy(ABC):
    """Base class of every policy.

    Parameters
    ----------
    floor
        Total exploration mass spread uniformly over the eligible actions (each keeps at least
        ``floor / K``, see :func:`apply_floor`), so logs support off-policy evaluation while
        the policy can still concentrate on its best offers among hundreds.
    seed
        Seed of the deterministic sampler (with the event id) and of any model randomness.
    """

    name: ClassVar[str]
    tracks_errors: ClassVar[bool] = True
    """Whether :meth:`learn` records the model's prediction error (one extra prediction)."""

    def __init__(self, *, floor: float = 0.05, seed: int = 0) -> None:
        if not 0.0 <= floor <= 1.0 or not math.isfinite(floor):
            msg = f"Expected 0 <= floor <= 1, got {floor}"
            raise InvalidInputError(msg)
        self.floor = floor
        self.seed = seed
        self.n_updates = 0
        self._action_stats: dict[str, list[float]] = {}
        self._reward_totals = [0.0, 0.0]  # outcomes and their reward sum, over all actions
        # n, sum (p-y)^2, sum p(1-p), sum (p-y), sum p
        self._error_stats = [0.0, 0.0, 0.0, 0.0, 0.0]
        self._family_n: dict[str, float] = {}
        self._family_error: dict[str, list[float]] = {}  # family -> [n, sum (p - y)]
        self.learning_state: dict[str, Any] = {}
        """State of the feedback loop that trains this policy (open events), kept with the
        model so that a snapshot and the messages it acknowledges stay consistent."""
        self._action_sets: list[ActionSet] = []
        self._raw_scores: Any = None
        self._choice_memo: tuple[Decision, int, Any] | None = None
        self._current_set: ActionSet | None = None

    # ------------------------------------------------------------------ public API

    def choose(self, context: Features, actions: Sequence[Action], *, event_id: str) -> Decision:
        """Score the eligible actions, floor the pmf and sample one action.

        Parameters
        ----------
        context
            Model features of the citizen.
        actions
            Eligible actions (already filtered for legality and capacity), at least one.
        event_id
            Unique event id; the same ``(seed, event_id)`` and model state give the same choice.
        """
        if not event_id:
            msg = "Expected a non-empty event_id"
            raise InvalidInputError(msg)
        prepared = self._prepare(actions)
        actions = prepared.actions
        self._current_set = prepared
        self._raw_scores = None
        expected, raw_pmf = self._choice_scores(context, actions)
        raw = self._raw_scores
        weights = self._exploration_weights(actions)
        u = deterministic_uniform(self.seed, event_id)
        if isinstance(raw_pmf, list):  # the small-K plain-Python path, bit-identical
            if weights is not None:
                weight_list = prepared.cache.get("weight_list")
                if weight_list is None:
                    weight_list = prepared.cache["weight_list"] = weights.tolist()
            pmf_list = apply_floor_list(
                raw_pmf, self.floor, None if weights is None else weight_list
            )
            index = sample_index(pmf_list, u)
            pmf_values = tuple(pmf_list)
            expected_values = tuple(expected)
        else:
            pmf = apply_floor(raw_pmf, self.floor, weights)
            cdf = np.cumsum(pmf)
            index = int(np.searchsorted(cdf, u * cdf[-1], side="right"))
            index = min(index, len(actions) - 1)
            pmf_values = tuple(pmf.tolist())
            expected_values = tuple(np.asarray(expected, dtype=float).tolist())
        decision = Decision(
            event_id=event_id,
            context=dict(context),
            actions=actions,
            pmf=pmf_values,
            chosen=index,
            propensity=pmf_values[index],
            expected_rewards=expected_values,
            model_version=self.model_version,
            policy=self.name,
        )
        self._choice_memo = (decision, self.n_updates, raw)
        return decision

    def _choice_scores(
        self, context: Features, actions: Sequence[Action]
    ) -> tuple[np.ndarray | list[float], np.ndarray | list[float]]:
        """Expected rewards and the unfloored pmf for :meth:`choose`.

        A subclass may return both as lists of floats for small action sets (then the floor
        and the sampling run in plain Python too, :mod:`bandit.policies.smallk`); they must be
        bit-identical to ``_expected_rewards`` and ``_pmf``.
        """
        expected = self._expected_rewards(context, actions)
        return expected, self._pmf(context, actions, expected)

    def _cached_set(self, actions: Sequence[Action]) -> ActionSet | None:
        """The :class:`ActionSet` being chosen from when ``actions`` is its tuple, else None."""
        current = self._current_set
        return current if current is not None and current.actions is actions else None

    def _prepare(self, actions: Sequence[Action]) -> ActionSet:
        """The validated action set, cached for the last few distinct sets (the eligible offers
        of a catalog repeat from request to request; equal tuples hit, identical objects
        compare fastest)."""
        key = tuple(actions)
        sets = self._action_sets
        for prepared in sets:
            if prepared.actions == key:
                return prepared
        self._check_actions(key)
        prepared = ActionSet(key)
        sets.insert(0, prepared)
        del sets[_MAX_ACTION_SETS:]
        return prepared

    def estimate_of(self, context: Features, action: Action) -> float:
        """The model's expected reward of one action for one context (unfloored, raw)."""
        return float(self._expected_rewards(context, [action])[0])

    def estimates_of(self, context: Features, actions: Sequence[Action]) -> np.ndarray:
        """:meth:`estimate_of` of several actions in one model call (each action's estimate
        depends only on the context and that action), shape ``(len(actions),)``."""
        return np.asarray(self._expected_rewards(context, list(actions)), dtype=float)

    def probabilities(self, context: Features, actions: Sequence[Action]) -> np.ndarray:
        """The floored pmf over ``actions`` without sampling, shape ``(len(actions),)``."""
        actions = self._check_actions(actions)
        expected = self._expected_rewards(context, actions)
        return apply_floor(
            self._pmf(context, actions, expected), self.floor, self._exploration_weights(actions)
        )

    def _exploration_weights(self, actions: Sequence[Action]) -> np.ndarray | None:
        """How the exploration mass is spread over ``actions`` (``None``: uniformly)."""
        return None

    def exploration_probabilities(self, actions: Sequence[Action]) -> np.ndarray:
        """The probability each action keeps whatever the model says: its share of ``floor``.

        ``floor / K`` each when the mass is spread uniformly; a policy that spreads it by
        family (:class:`~bandit.policies.vw_policy.VWPolicy`) gives ``floor / (F n_f)``.
        """
        weights = self._exploration_weights(actions)
        if weights is None:
            return np.full(len(actions), self.floor / len(actions))
        out: np.ndarray = self.floor * weights / float(weights.sum())
        return out

    def learn(
        self,
        decision: Decision,
        reward: float,
        *,
        action_index: int | None = None,
        propensity: float | None = None,
    ) -> None:
        """Learn from the reward of one decision.

        Parameters
        ----------
        decision
            The decision as logged (context, eligible actions, pmf).
        reward
            Observed reward (higher is better); must be finite.
        action_index
            Index of the action whose reward this is; default the sampled one.
        propensity
            Logging probability of that action; default ``decision.pmf[action_index]``.
        """
        if not isinstance(reward, (int, float)) or not math.isfinite(reward):
            msg = f"Expected a finite reward, got {reward!r}"
            raise InvalidInputError(msg)
        index = decision.chosen if action_index is None else action_index
        if not 0 <= index < len(decision.actions):
            msg = f"action_index {index} out of range for {len(decision.actions)} actions"
            raise InvalidInputError(msg)
        p = decision.pmf[index] if propensity is None else propensity
        if not 0.0 < p <= 1.0:
            msg = f"Expected a propensity in (0, 1], got {p}"
            raise InvalidInputError(msg)
        if self.tracks_errors:
            family = str(decision.actions[index].features.get("family", ""))
            predicted = self._prediction_before_learning(decision, index)
            self.track_error(predicted, float(reward), family=family)
        self._learn(decision.context, decision.actions, index, p, float(reward))
        self.observe_outcome(decision.actions[index], float(reward))
        self.n_updates += 1

    def _prediction_before_learning(self, decision: Decision, index: int) -> float:
        """The model's current expected reward of ``decision.actions[index]`` for its context.

        When ``decision`` is the last one this instance chose and the model has not learned
        since, the scores of that choice are reused (:meth:`_memo_prediction`, bit-identical
        to predicting again); otherwise the model predicts the one action.
        """
        memo = self._choice_memo
        if memo is not None and memo[0] is decision and memo[1] == self.n_updates:
            cached = self._memo_prediction(memo[2], index)
            if cached is not None:
                return cached
        before = self._expected_rewards(decision.context, [decision.actions[index]])
        return float(before[0])

    def _memo_prediction(self, raw: Any, index: int) -> float | None:
        """The expected reward of action ``index`` from the raw scores a subclass stored in
        ``self._raw_scores`` while choosing, computed exactly as :meth:`_expected_rewards`
        does for that one action; ``None`` to predict again."""
        return None

    def observe_outcome(self, action: Action | str, reward: float) -> None:
        """Count one final reward of ``action_id`` in the evidence shown in explanations.

        :meth:`learn` calls it; a hazard learner, which learns citizen-weeks instead, gets it
        from the feedback loop when an outcome is complete.
        """
        action_id = action if isinstance(action, str) else action.id
        if not isinstance(action, str):
            family = str(action.features.get("family", ""))
            self._family_n[family] = self._family_n.get(family, 0.0) + 1.0
        stats = self._action_stats.setdefault(action_id, [0.0, 0.0, 0.0])
        stats[0] += 1.0
        stats[1] += reward
        stats[2] += reward * reward
        self._reward_totals[0] += 1.0
        self._reward_totals[1] += reward

    def estimates(
        self,
        context: Features,
        actions: Sequence[Action],
        *,
        raw: Sequence[float] | None = None,
    ) -> list[RewardEstimate]:
        """Expected reward of each action with a 95 % interval, from the model itself.

        ``raw``: the model's raw expected rewards of ``actions`` for ``context`` when the
        caller has them (``Decision.expected_rewards`` of the same model state), so the
        model is not asked again.

        The mean is the model's own estimate (for a hazard learner ``P(job within H)``), the
        one that ranks the offers, less the model's mean error on the recommendations it made
        (:meth:`model_bias`, the winner's curse of picking the highest estimate). The
        interval's half-width is ``1.96 sqrt(model_error^2 + m (1 - m) / (n + 1))``:
        ``model_error^2`` is the model's mean squared error against the truth, estimated from
        settled outcomes as the excess of its squared prediction error over the Bernoulli
        variance it predicted (:meth:`track_error`), and the second term the sampling error of
        the ``n`` outcomes seen for the offer's family (the model pools offers by family). Before :data:`MIN_TRACKED` outcomes are tracked the model is
        untrained: the mean is shrunk towards the mean reward seen so far (0.5 before any)
        and the interval is the whole range, never a confident "0 %".
        """
        actions = self._check_actions(actions)
        if raw is not None and len(raw) == len(actions):
            expected = np.asarray(raw, dtype=float)
        else:
            expected = np.asarray(self._expected_rewards(context, actions), dtype=float)
        prior = self._overall_mean_reward()
        tracked, model_var = self.model_error()
        bias = self.model_bias()
        trust = tracked / (tracked + PRIOR_STRENGTH * MIN_TRACKED / 5.0)
        out = []
        for action, score in zip(actions, expected.tolist(), strict=True):
            n = self._action_stats.get(action.id, (0.0, 0.0, 0.0))[0]
            family_n = self._family_n.get(str(action.features.get("family", "")), n)
            corrected = min(max(score - bias, 0.0), 1.0) if math.isfinite(score) else prior
            m = trust * corrected + (1.0 - trust) * prior
            if tracked < MIN_TRACKED:
                low, high = 0.0, 1.0
            else:
                half = _Z95 * math.sqrt(model_var + m * (1.0 - m) / (max(n, family_n) + 1.0))
                low, high = m - half, m + half
            out.append(RewardEstimate(m, low, high, int(n)))
        return out

    def track_error(self, predicted: float, reward: float, *, family: str | None = None) -> None:
        """Record the model's prediction for a settled decision and its 0/1 reward.

        The excess of the mean squared error over the mean predicted Bernoulli variance,
        ``mean((p - y)^2) - mean(p (1 - p))``, estimates ``mean((p - truth)^2)`` when the
        model is calibrated; :meth:`estimates` uses it for its intervals. With ``family``
        (the offer family of the recommended offer) the residual also counts in that family's
        mean residual (:meth:`family_residual`).
        """
        if not (math.isfinite(predicted) and math.isfinite(reward)):
            return
        p = min(max(predicted, 0.0), 1.0)
        if family is not None:
            fam = self._family_error.setdefault(family, [0.0, 0.0])
            _fade(fam, FAMILY_ERROR_WINDOW)
            fam[0] += 1.0
            fam[1] += p - reward
        stats = self._error_stats
        _fade(stats, ERROR_WINDOW)  # exponential forgetting: the model of months ago is gone
        stats[0] += 1.0
        stats[1] += (p - reward) ** 2
        stats[2] += p * (1.0 - p)
        stats[3] += p - reward
        stats[4] += p

    def model_bias(self) -> float:
        """Mean of (prediction - outcome) over tracked outcomes (0 before MIN_TRACKED).

        The tracked predictions are those of recommended offers, chosen because the model
        rated them highest, so they carry the winner's curse; shown estimates subtract it.
        """
        n, total = self._error_stats[0], self._error_stats[3]
        return total / n if n >= MIN_TRACKED else 0.0

    def family_residual(self, family: str, strength: float) -> float:
        """How much more than the model's overall mean residual its predictions for
        ``family`` exceeded the outcomes: ``n_f / (n_f + strength) * (bias_f - bias)``.

        ``bias_f`` is the mean of (prediction - outcome) over the recent recommendations of
        the family, ``bias`` the same over all families (:meth:`model_bias`); ``strength``
        pseudo-outcomes shrink a family with little evidence towards no correction.
        """
        stats = self._family_error.get(family)
        if stats is None or stats[0] <= 0.0:
            return 0.0
        n, total = stats
        return n / (n + strength) * (total / n - self.model_bias())

    def model_error(self) -> tuple[float, float]:
        """``(outcomes tracked, estimated squared error of the model against the truth)``.

        The squared error has a floor of ``MODEL_ERROR_FLOOR ** 2`` and adds the standard
        error of its own estimate, so few tracked outcomes give wider intervals.
        """
        n, sse, var, _, total_p = self._error_stats
        if n <= 0:
            return 0.0, 0.25
        b = self.model_bias()
        # error of the bias-corrected prediction q = p - b against the truth:
        # mean (q - y)^2 - mean q (1 - q), expanded in the tracked sums
        mean_sq = sse / n - b * b
        mean_var = var / n + b * (2.0 * total_p / n - 1.0) - b * b
        excess = mean_sq - mean_var
        se_of_excess = 1.0 / math.sqrt(n)  # squared errors of 0/1 outcomes are within [0, 1]
        return n, max(excess, 0.0) + 0.25 * se_of_excess + MODEL_ERROR_FLOOR**2

    def _overall_mean_reward(self) -> float:
        n, total = self._reward_totals
        return total / n if n else 0.5

    @property
    def model_version(self) -> str:
        """Version id: policy name, parameter fingerprint and number of updates."""
        return f"{self.name}-{self._params_fingerprint()}-{self.n_updates:08d}"

    # ------------------------------------------------------------------ configuration

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments, stored unchanged under the same names."""
        return {"floor": self.floor, "seed": self.seed}

    def clone(self) -> Self:
        """A fresh, untrained policy with the same parameters."""
        return type(self)(**self.get_params())

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        """Keyword arguments that make small, fast instances for the conformance suite."""
        yield {"floor": 0.05, "seed": 7}

    def _params_fingerprint(self) -> str:
        # Parameters never change after construction, so the fingerprint is computed once.
        cached: str | None = self.__dict__.get("_fingerprint")
        if cached is None:
            blob = json.dumps(self.get_params(), sort_keys=True, default=str).encode()
            cached = self._fingerprint = hashlib.blake2b(blob, digest_size=4).hexdigest()
        return cached

    def exploration_params(self) -> frozenset[str]:
        """Parameters that only shape the served pmf, never the learned state: a stored model
        may take new values of these (:meth:`with_params`) and keep what it learned."""
        return frozenset({"floor"})

    def with_params(self, **changes: Any) -> Self:
        """This model, learned state included, with other values of
        :meth:`exploration_params` (a new instance; this one is unchanged).

        Raises
        ------
        InvalidInputError
            For a parameter that is not an exploration parameter (it would change how the
            stored state is read or learned).
        """
        fixed = sorted(set(changes) - self.exploration_params())
        if fixed:
            msg = f"Only exploration parameters can change on a trained model, not {fixed}"
            raise InvalidInputError(msg)
        head, _, payload = self.to_bytes().partition(b"\n")
        header = json.loads(head)
        header["params"] = {**header["params"], **changes}
        return self.from_bytes(json.dumps(header, sort_keys=True).encode() + b"\n" + payload)

    # ------------------------------------------------------------------ persistence

    def to_bytes(self) -> bytes:
        """Serialise the policy (header JSON line + model payload); no pickle."""
        header = {
            "format": SNAPSHOT_FORMAT,
            "policy": self.name,
            "params": self.get_params(),
            "n_updates": self.n_updates,
            "action_stats": self._action_stats,
            "error_stats": self._error_stats,
            "family_n": self._family_n,
            "family_error": self._family_error,
            "model_version": self.model_version,
            "learning_state": self.learning_state,
        }
        return json.dumps(header, sort_keys=True).encode() + b"\n" + self._dump_state()

    def save(self, path: str | Any) -> str:
        """Write :meth:`to_bytes` to ``path``; return the model version."""
        from pathlib import Path

        target = Path(path)
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_bytes(self.to_bytes())
        tmp.replace(target)
        return self.model_version

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Rebuild a policy of this class from :meth:`to_bytes` output."""
        header, payload = read_snapshot_header(data)
        if header["policy"] != cls.name:
            msg = f"Snapshot is for policy {header['policy']!r}, not {cls.name!r}"
            raise ModelFormatError(msg)
        policy = cls(**header["params"])
        policy._load_state(payload)
        policy.n_updates = int(header["n_updates"])
        policy._action_stats = {k: list(v) for k, v in header["action_stats"].items()}
        policy._reward_totals = [
            sum(stats[0] for stats in policy._action_stats.values()),
            sum(stats[1] for stats in policy._action_stats.values()),
        ]
        policy.learning_state = dict(header.get("learning_state") or {})
        stored = [float(v) for v in header.get("error_stats", ())]
        policy._error_stats = (stored + [0.0] * 5)[:5]
        policy._family_n = {k: float(v) for k, v in header.get("family_n", {}).items()}
        policy._family_error = {
            k: [float(x) for x in v][:2] for k, v in header.get("family_error", {}).items()
        }
        return policy

    # ------------------------------------------------------------------ subclass hooks

    @abstractmethod
    def _expected_rewards(self, context: Features, actions: Sequence[Action]) -> np.ndarray:
        """Expected reward of each action, shape ``(len(actions),)``."""

    @abstractmethod
    def _pmf(
        self, context: Features, actions: Sequence[Action], expected: np.ndarray
    ) -> np.ndarray:
        """Unfloored probabilities of each action (non-negative, any positive sum)."""

    @abstractmethod
    def _learn(
        self,
        context: Features,
        actions: Sequence[Action],
        index: int,
        propensity: float,
        reward: float,
    ) -> None:
        """Update the model with one interaction."""

    def _dump_state(self) -> bytes:
        """Model payload for :meth:`to_bytes` (empty for stateless policies)."""
        return b""

    def _load_state(self, payload: bytes) -> None:  # noqa: B027 (optional hook)
        """Restore the payload written by :meth:`_dump_state`."""

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _check_actions(actions: Sequence[Action]) -> Sequence[Action]:
        if len(actions) == 0:
            msg = "Expected at least one eligible action"
            raise InvalidInputError(msg)
        ids = [a.id for a in actions]
        if len(set(ids)) != len(ids):
            msg = "Expected unique action ids among the eligible actions"
            raise InvalidInputError(msg)
        return actions


class StaticPolicy(Policy):
    """A policy whose choice rule does not learn (baselines, rules, oracles).

    Its expected reward per action is the observed mean reward of that action (0.5 before any
    is seen), which is what explanations show; ``learn`` still records those statistics.
    """

    def _expected_rewards(self, context: Features, actions: Sequence[Action]) -> np.ndarray:
        if not self._action_stats:
            return np.full(len(actions), 0.5)
        means = []
        for action in actions:
            n, s, _ = self._action_stats.get(action.id, (0.0, 0.0, 0.0))
            means.append(s / n if n else 0.5)
        return np.asarray(means, dtype=float)

    def _learn(
        self,
        context: Features,
        actions: Sequence[Action],
        index: int,
        propensity: float,
        reward: float,
    ) -> None:
        return None


def _fade(stats: list[float], window: float) -> None:
    """Exponential forgetting of running sums whose first entry is their count: once the
    count reaches ``window``, every sum is scaled by ``1 - 1 / window`` (in place)."""
    if stats[0] >= window:
        keep = 1.0 - 1.0 / window
        stats[:] = [v * keep for v in stats]


def read_snapshot_header(data: bytes) -> tuple[Mapping[str, Any], bytes]:
    """Split a snapshot into its JSON header and model payload; validate the header."""
    head, sep, payload = data.partition(b"\n")
    if not sep:
        msg = "Not a policy snapshot: no header line"
        raise ModelFormatError(msg)
    try:
        header = json.loads(head)
    except (json.JSONDecodeError, UnicodeDecodeError):
        msg = "Not a policy snapshot: header is not JSON"
        raise ModelFormatError(msg) from None
    if not isinstance(header, dict) or header.get("format") != SNAPSHOT_FORMAT:
        msg = f"Unsupported snapshot format {header.get('format') if isinstance(header, dict) else None!r}"
        raise ModelFormatError(msg)
    return header, payload

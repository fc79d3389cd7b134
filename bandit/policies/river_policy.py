"""Online logistic regression (river) over context x action features, with exploration.

The model predicts the employment probability of an action for a context from the encoded
action features and every context x action feature product (:mod:`bandit.encoding`), so it
learns shared effects across the catalog (family, sector, provider, length) as well as per-offer
effects (the action id is a feature). Exploration:

* ``"epsilon"``: one model; ``epsilon / K`` to each action, the rest shared by the best.
* ``"thompson"``: bootstrapped Thompson sampling. ``n_members`` models each learn every event
  with a Poisson(1) weight (an online bootstrap); Thompson sampling draws a member uniformly and
  plays its greedy action, so the pmf is computed EXACTLY as the share of members whose greedy
  action each action is (ties split) - no Monte-Carlo. The Poisson weights come from
  ``default_rng([seed, n_updates])``, so learning is deterministic and reproducible after a
  reload.

Rewards are clipped to ``[0, 1]``; a fractional reward ``r`` is learned as a positive example
with weight ``r`` and a negative one with weight ``1 - r`` (exact for the log loss). Like
SquareCB's regression oracle, the model is fit without importance weights. Snapshots are JSON
(weights, intercepts, optimiser step counts); nothing is pickled.

References
----------
Osband, I. and Van Roy, B. (2015). Bootstrapped Thompson sampling and deep exploration.
Eckles, D. and Kaptein, M. (2014). Thompson sampling with the online bootstrap.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from itertools import chain, islice
from typing import Any, ClassVar, Self

import numpy as np

from bandit.encoding import encode_features
from bandit.errors import InvalidInputError, ModelFormatError
from bandit.policies.base import Policy
from bandit.policies.smallk import SMALL_K, all_finite
from bandit.types import Action, Features

EXPLORATIONS = ("epsilon", "thompson")
_MAX_CACHE = 20_000
_MAX_MEMBERS = 100
_MAX_CROSS_NAMES = 512


def _greedy_share(scores: np.ndarray) -> np.ndarray:
    best = scores == scores.max()
    share: np.ndarray = best / float(best.sum())
    return share


class RiverPolicy(Policy):
    """Contextual bandit on river logistic regression(s), epsilon-greedy or bootstrapped Thompson.

    Parameters
    ----------
    exploration
        ``"thompson"`` (default) or ``"epsilon"``.
    epsilon
        Exploration rate for ``"epsilon"``.
    n_members
        Bootstrap ensemble size for ``"thompson"`` (pmf resolution is ``1 / n_members`` before
        the floor).
    learning_rate
        Constant SGD learning rate of every model.
    l2
        L2 penalty of every model.
    floor, seed
        See :class:`~bandit.policies.base.Policy`; ``seed`` also fixes the bootstrap weights.

    Examples
    --------
    >>> from bandit.types import Action
    >>> acts = [Action("a", {"family": "mentor"}), Action("b", {"family": "standard_contact"})]
    >>> policy = RiverPolicy(seed=1, learning_rate=0.5)
    >>> for i in range(40):
    ...     d = policy.choose({"weeks_unemployed": 4}, acts, event_id=f"e{i}")
    ...     policy.learn(d, 1.0 if d.chosen_action.id == "b" else 0.0)
    >>> d = policy.choose({"weeks_unemployed": 4}, acts, event_id="next")
    >>> d.expected_rewards[1] > d.expected_rewards[0], d.pmf[1] > 0.5
    (True, True)
    """

    name: ClassVar[str] = "river"

    def __init__(
        self,
        *,
        exploration: str = "thompson",
        epsilon: float = 0.05,
        n_members: int = 10,
        learning_rate: float = 0.1,
        l2: float = 0.0,
        floor: float = 0.02,
        seed: int = 0,
    ) -> None:
        super().__init__(floor=floor, seed=seed)
        self.exploration = exploration
        self.epsilon = epsilon
        self.n_members = n_members
        self.learning_rate = learning_rate
        self.l2 = l2
        self._validate()
        self._models = [self._new_model() for _ in range(self._n_models)]
        self._action_items: dict[str, tuple[Action, list[tuple[str, float]]]] = {}

    # ------------------------------------------------------------------ configuration

    def _validate(self) -> None:
        checks: list[tuple[bool, str]] = [
            (self.exploration in EXPLORATIONS, f"exploration must be one of {EXPLORATIONS}"),
            (_finite(self.epsilon) and 0.0 <= self.epsilon <= 1.0, "0 <= epsilon <= 1"),
            (
                isinstance(self.n_members, int) and 1 <= self.n_members <= _MAX_MEMBERS,
                "n_members must be an int in 1..100",
            ),
            (_finite(self.learning_rate) and self.learning_rate > 0, "learning_rate > 0"),
            (_finite(self.l2) and self.l2 >= 0, "l2 >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                msg = f"Invalid RiverPolicy parameter: {message}"
                raise InvalidInputError(msg)

    @property
    def _n_models(self) -> int:
        return self.n_members if self.exploration == "thompson" else 1

    def _new_model(self) -> Any:
        from river import linear_model, optim

        return linear_model.LogisticRegression(
            optimizer=optim.SGD(self.learning_rate), l2=self.l2, intercept_lr=self.learning_rate
        )

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments, stored unchanged under the same names."""
        return {
            "exploration": self.exploration,
            "epsilon": self.epsilon,
            "n_members": self.n_members,
            "learning_rate": self.learning_rate,
            "l2": self.l2,
            **super().get_params(),
        }

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {"floor": 0.05, "seed": 7}
        yield {"exploration": "epsilon", "epsilon": 0.1, "seed": 3}
        yield {"exploration": "thompson", "n_members": 4, "learning_rate": 0.3, "seed": 5}

    # ------------------------------------------------------------------ features

    def _items(self, action: Action) -> list[tuple[str, float]]:
        hit = self._action_items.get(action.id)
        if hit is not None and (hit[0] is action or hit[0].features == action.features):
            return hit[1]
        if len(self._action_items) >= _MAX_CACHE:
            self._action_items.clear()
        items = [(f"id={action.id}", 1.0), *encode_features(action.features)]
        self._action_items[action.id] = (action, items)
        return items

    def _rows(self, context: Features, actions: Sequence[Action]) -> list[dict[str, float]]:
        """One feature dict per action: the context (``c:``), the action (``a:``) and every
        context x action product (``ctx&act``), in this insertion order."""
        prepared = self._cached_set(actions)
        if prepared is None:
            return self._rows_plain(context, actions)
        ctx = encode_features(context)
        base = {f"c:{k}": v for k, v in ctx}
        layout = prepared.cache.get("river")
        if layout is None:
            layout = prepared.cache["river"] = _ActionLayout([self._items(a) for a in actions])
        # Keys and values item by item: ("a:item", "ctx1&item", "ctx2&item", ...), the order
        # _rows_plain inserts them in, so every row is the same dict (same order, same floats).
        columns = [layout.a_keys, *(layout.cross(name) for name, _ in ctx)]
        keys = list(chain.from_iterable(zip(*columns, strict=True)))
        factors = np.asarray([1.0, *(value for _, value in ctx)])
        values = np.multiply.outer(layout.a_values, factors).ravel().tolist()
        pairs = zip(keys, values, strict=False)  # one pair iterator, sliced row by row
        width = len(factors)
        rows = []
        for size in layout.sizes:
            row = base.copy()
            row.update(islice(pairs, size * width))
            rows.append(row)
        return rows

    def _rows_plain(self, context: Features, actions: Sequence[Action]) -> list[dict[str, float]]:
        ctx = encode_features(context)
        base = {f"c:{k}": v for k, v in ctx}
        rows = []
        for action in actions:
            items = self._items(action)
            row = dict(base)
            for ak, av in items:
                row[f"a:{ak}"] = av
                for ck, cv in ctx:
                    row[f"{ck}&{ak}"] = cv * av
            rows.append(row)
        return rows

    def _member_scores(self, context: Features, actions: Sequence[Action]) -> np.ndarray:
        rows = self._rows(context, actions)
        scores = np.array(
            [[m.predict_proba_one(x)[True] for x in rows] for m in self._models], dtype=float
        )
        self._raw_scores = (scores, rows)
        return scores

    # ------------------------------------------------------------------ policy hooks

    def _expected_rewards(self, context: Features, actions: Sequence[Action]) -> np.ndarray:
        scores = self._member_scores(context, actions)
        self._last_scores = (context, tuple(a.id for a in actions), scores)
        mean: np.ndarray = scores.mean(axis=0)
        return mean

    def _memo_prediction(self, raw: Any, index: int) -> float | None:
        # The chosen action's column as a (members, 1) array, averaged exactly as a
        # one-action prediction is.
        if raw is None:
            return None
        if len(raw[0]) == 1:  # one model: the mean of one value is the value (x / 1 == x)
            return float(raw[0][0][index])
        return float(np.asarray([[row[index]] for row in raw[0]]).mean(axis=0)[0])

    def _choice_scores(
        self, context: Features, actions: Sequence[Action]
    ) -> tuple[np.ndarray | list[float], np.ndarray | list[float]]:
        """From 2 to :data:`~bandit.policies.smallk.SMALL_K` actions the ensemble mean and
        the pmf are computed on lists, in numpy's order (the axis-0 mean of a
        ``(members, K)`` array adds the members one by one), bit-identical."""
        k = len(actions)
        if not 2 <= k <= SMALL_K:  # noqa: PLR2004
            return super()._choice_scores(context, actions)
        rows = self._rows(context, actions)
        preds = [[m.predict_proba_one(x)[True] for x in rows] for m in self._models]
        self._raw_scores = (preds, rows)
        if not all(all_finite(p) for p in preds):
            scores = np.array(preds, dtype=float)
            self._last_scores = (context, tuple(a.id for a in actions), scores)
            expected = scores.mean(axis=0)
            return expected, self._pmf(context, actions, expected)
        n = len(preds)
        expected = [total / n for total in _column_sums(preds)]
        if self.exploration == "epsilon":
            base = self.epsilon / k
            keep = 1.0 - self.epsilon
            return expected, [base + keep * share for share in _greedy_share_list(expected)]
        shares = [_greedy_share_list(p) for p in preds]
        return expected, [total / n for total in _column_sums(shares)]

    def _pmf(
        self, context: Features, actions: Sequence[Action], expected: np.ndarray
    ) -> np.ndarray:
        if self.exploration == "epsilon":
            return self.epsilon / len(actions) + (1.0 - self.epsilon) * _greedy_share(expected)
        cached = getattr(self, "_last_scores", None)
        ids = tuple(a.id for a in actions)
        if cached is not None and cached[0] is context and cached[1] == ids:
            scores = cached[2]
        else:
            scores = self._member_scores(context, actions)
        # Each member's greedy share (ties split), stacked: the same values and the same
        # axis-0 mean as averaging the members' _greedy_share one by one.
        best = scores == scores.max(axis=1, keepdims=True)
        shares = best / best.sum(axis=1, keepdims=True).astype(float)
        pmf: np.ndarray = shares.mean(axis=0)
        return pmf

    def _learn(
        self,
        context: Features,
        actions: Sequence[Action],
        index: int,
        propensity: float,
        reward: float,
    ) -> None:
        memo = self._choice_memo
        if (
            memo is not None
            and memo[0].context is context
            and memo[0].actions is actions
            and memo[2] is not None
        ):
            x = memo[2][1][index]  # the row the choice was scored on (rows are model-free)
        else:
            x = self._rows(context, [actions[index]])[0]
        r = min(max(reward, 0.0), 1.0)
        weights: Sequence[int] = (1,)
        if self.exploration == "thompson":
            draw = np.random.default_rng([self.seed % 2**63, self.n_updates])
            weights = draw.poisson(1.0, size=len(self._models)).tolist()
        for model, w in zip(self._models, weights, strict=True):
            if w > 0 and r > 0.0:
                model.learn_one(x, True, w=float(w) * r)
            if w > 0 and r < 1.0:
                model.learn_one(x, False, w=float(w) * (1.0 - r))

    # ------------------------------------------------------------------ persistence

    def _dump_state(self) -> bytes:
        state = [
            {
                "weights": dict(m.weights),
                "intercept": float(m.intercept),
                "n_iterations": int(m.optimizer.n_iterations),
            }
            for m in self._models
        ]
        return json.dumps(state, sort_keys=True).encode()

    def _load_state(self, payload: bytes) -> None:
        try:
            state = json.loads(payload)
            if not isinstance(state, list) or len(state) != self._n_models:
                raise TypeError
            models = [self._restore(item) for item in state]
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError, KeyError, ValueError):
            msg = "River policy payload is not a valid model state for these parameters"
            raise ModelFormatError(msg) from None
        self._models = models

    def _restore(self, item: Any) -> Any:
        model = self._new_model()
        for key, value in dict(item["weights"]).items():
            model._weights[str(key)] = float(value)  # noqa: SLF001 (river has no weight setter)
        model.intercept = float(item["intercept"])
        model.optimizer.n_iterations = int(item["n_iterations"])
        return model

    def __reduce__(self) -> tuple[Callable[[bytes], Self], tuple[bytes]]:
        """Pickle through the JSON snapshot format."""
        return type(self).from_bytes, (self.to_bytes(),)


def _greedy_share_list(values: list[float]) -> list[float]:
    """:func:`_greedy_share` on a list of finite values (``True / c`` is ``1.0 / c``)."""
    top = max(values)
    count = float(sum(v == top for v in values))
    return [1.0 / count if v == top else 0.0 for v in values]


def _column_sums(rows: list[list[float]]) -> list[float]:
    """Column sums adding the rows one by one (numpy's axis-0 order for 2+ columns)."""
    sums = list(rows[0])
    for row in rows[1:]:
        sums = [a + b for a, b in zip(sums, row, strict=True)]
    return sums


class _ActionLayout:
    """An action set's items laid out flat (action by action, item by item), with the
    ``ctx&item`` key strings built once per context feature name."""

    __slots__ = ("_cross", "a_keys", "a_values", "names", "sizes")

    def __init__(self, items: list[list[tuple[str, float]]]) -> None:
        self.sizes = [len(i) for i in items]
        self.names = [name for action in items for name, _ in action]
        self.a_keys = tuple(f"a:{name}" for name in self.names)
        self.a_values = np.asarray([value for action in items for _, value in action], float)
        self._cross: dict[str, tuple[str, ...]] = {}

    def cross(self, context_name: str) -> tuple[str, ...]:
        keys = self._cross.get(context_name)
        if keys is None:
            if len(self._cross) >= _MAX_CROSS_NAMES:
                self._cross.clear()
            keys = self._cross[context_name] = tuple(f"{context_name}&{n}" for n in self.names)
        return keys


def _finite(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

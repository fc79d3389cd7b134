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
from typing import Any, ClassVar, Self

import numpy as np

from bandit.encoding import encode_features
from bandit.errors import InvalidInputError, ModelFormatError
from bandit.policies.base import Policy
from bandit.types import Action, Features

EXPLORATIONS = ("epsilon", "thompson")
_MAX_CACHE = 20_000
_MAX_MEMBERS = 100


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
        return np.array(
            [[m.predict_proba_one(x)[True] for x in rows] for m in self._models], dtype=float
        )

    # ------------------------------------------------------------------ policy hooks

    def _expected_rewards(self, context: Features, actions: Sequence[Action]) -> np.ndarray:
        scores = self._member_scores(context, actions)
        self._last_scores = (context, tuple(a.id for a in actions), scores)
        mean: np.ndarray = scores.mean(axis=0)
        return mean

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
        pmf: np.ndarray = np.mean([_greedy_share(row) for row in scores], axis=0)
        return pmf

    def _learn(
        self,
        context: Features,
        actions: Sequence[Action],
        index: int,
        propensity: float,
        reward: float,
    ) -> None:
        x = self._rows(context, [actions[index]])[0]
        r = min(max(reward, 0.0), 1.0)
        if self.exploration == "thompson":
            weights = np.random.default_rng([self.seed % 2**63, self.n_updates]).poisson(
                1.0, size=len(self._models)
            )
        else:
            weights = np.ones(1, dtype=int)
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


def _finite(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

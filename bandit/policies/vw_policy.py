"""Vowpal Wabbit contextual bandit (``cb_explore_adf`` family) behind the policy interface.

How the pmf and the expected rewards are obtained, per ``exploration``:

* ``"squarecb"`` (default) and ``"epsilon"``: ONE ``--cb_adf --cb_type mtr`` workspace predicts
  the cost of every eligible action (its scores are the expected rewards, ``reward = -cost``)
  and the pmf is computed here from those scores with the same rule VW's ``--cb_explore_adf``
  applies: SquareCB's inverse-gap weighting ``p_a = 1 / (K + gamma (c_a - c_min))`` with
  ``gamma = gamma_scale * t ** gamma_exponent`` (``t`` = examples learned), the rest of the
  mass on the best action; or epsilon-greedy. VW's explore reductions do not expose the scores,
  so this gives both from one workspace at the cost of one predict.
* ``"regcb"``, ``"regcbopt"`` and ``"cover"``: the pmf comes from a ``--cb_explore_adf``
  workspace with that algorithm, and a second ``--cb_adf`` workspace supplies the expected
  rewards; both learn from every event (about twice the cost).

VW never samples: the base class floors the pmf and samples deterministically from
``(seed, event_id)``.

References
----------
Foster, D. and Rakhlin, A. (2020). Beyond UCB: optimal and efficient contextual bandits with
regression oracles. ICML.
Foster, D. et al. (2018). Practical contextual bandits with regression oracles. ICML.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar, Self

import numpy as np

from bandit.errors import InvalidInputError, ModelFormatError
from bandit.policies.base import Policy
from bandit.types import Action, Features
from bandit.vw.examples import (
    ActionLineCache,
    SharedLineCache,
    build_example,
    rewards_from_costs,
)
from bandit.vw.workspace import VWLearner

EXPLORATIONS = ("squarecb", "epsilon", "regcb", "regcbopt", "cover")
_OWN_PMF = frozenset({"squarecb", "epsilon"})
_LEN = struct.Struct(">Q")
_MAX_BITS = 30


def squarecb_pmf(costs: np.ndarray, gamma: float) -> np.ndarray:
    """SquareCB inverse-gap weighting over predicted costs (lower is better).

    Examples
    --------
    >>> squarecb_pmf(np.array([0.0, 1.0, 1.0]), gamma=0.0).round(3).tolist()
    [0.333, 0.333, 0.333]
    >>> squarecb_pmf(np.array([0.0, 1.0]), gamma=8.0).round(3).tolist()
    [0.9, 0.1]
    """
    k = costs.shape[0]
    best = int(np.argmin(costs))
    pmf: np.ndarray = 1.0 / (k + gamma * (costs - costs[best]))
    pmf[best] = 0.0
    pmf[best] = max(1.0 - float(pmf.sum()), 0.0)
    return pmf


def epsilon_greedy_pmf(costs: np.ndarray, epsilon: float) -> np.ndarray:
    """Epsilon-greedy over predicted costs: ``epsilon / K`` each, the rest shared by the best.

    Exactly tied best actions share the greedy mass, as VW's greedy exploration does.

    Examples
    --------
    >>> epsilon_greedy_pmf(np.array([0.5, -1.0]), 0.2).round(3).tolist()
    [0.1, 0.9]
    >>> epsilon_greedy_pmf(np.zeros(4), 0.2).round(3).tolist()
    [0.25, 0.25, 0.25, 0.25]
    """
    k = costs.shape[0]
    pmf = np.full(k, epsilon / k)
    best = costs == costs.min()
    pmf[best] += (1.0 - epsilon) / int(best.sum())
    return pmf


class VWPolicy(Policy):
    """Contextual bandit learned online by Vowpal Wabbit on ADF examples (``-q ca``).

    Parameters
    ----------
    exploration
        ``"squarecb"`` (default), ``"epsilon"``, ``"regcb"``, ``"regcbopt"`` or ``"cover"``.
    gamma_scale, gamma_exponent
        SquareCB's ``gamma = gamma_scale * t ** gamma_exponent`` (VW's defaults 10 and 0.5).
    epsilon
        Exploration rate for ``"epsilon"``.
    cover
        Number of policies for ``"cover"``.
    learning_rate
        VW ``--learning_rate``.
    interactions
        Quadratic interactions between namespaces (``"c"`` context, ``"a"`` action).
    bits
        Feature hash bits (``-b``).
    quiet
        Pass ``--quiet`` to VW.
    floor, seed
        See :class:`~bandit.policies.base.Policy`; ``seed`` is also VW's ``--random_seed``.

    Examples
    --------
    >>> from bandit.types import Action
    >>> acts = [Action("a", {"family": "mentor"}), Action("b", {"family": "standard_contact"})]
    >>> policy = VWPolicy(seed=1)
    >>> for i in range(30):
    ...     d = policy.choose({"weeks_unemployed": 4}, acts, event_id=f"e{i}")
    ...     policy.learn(d, 1.0 if d.chosen_action.id == "b" else 0.0)
    >>> d = policy.choose({"weeks_unemployed": 4}, acts, event_id="next")
    >>> d.expected_rewards[1] > d.expected_rewards[0], d.pmf[1] > 0.5
    (True, True)
    """

    name: ClassVar[str] = "vw"

    def __init__(
        self,
        *,
        exploration: str = "squarecb",
        gamma_scale: float = 10.0,
        gamma_exponent: float = 0.5,
        epsilon: float = 0.05,
        cover: int = 4,
        learning_rate: float = 0.5,
        interactions: Sequence[str] = ("ca",),
        bits: int = 18,
        quiet: bool = True,
        floor: float = 0.02,
        seed: int = 0,
    ) -> None:
        super().__init__(floor=floor, seed=seed)
        self.exploration = exploration
        self.gamma_scale = gamma_scale
        self.gamma_exponent = gamma_exponent
        self.epsilon = epsilon
        self.cover = cover
        self.learning_rate = learning_rate
        self.interactions = tuple(interactions)
        self.bits = bits
        self.quiet = quiet
        self._validate()
        self._lines = ActionLineCache()
        self._shared = SharedLineCache()
        self._scorer = VWLearner(self._scorer_args())
        self._explorer = None if exploration in _OWN_PMF else VWLearner(self._explorer_args())

    # ------------------------------------------------------------------ configuration

    def _validate(self) -> None:
        checks: list[tuple[bool, str]] = [
            (self.exploration in EXPLORATIONS, f"exploration must be one of {EXPLORATIONS}"),
            (_positive(self.gamma_scale), "gamma_scale must be a finite number > 0"),
            (_finite(self.gamma_exponent) and self.gamma_exponent >= 0, "gamma_exponent >= 0"),
            (_finite(self.epsilon) and 0.0 <= self.epsilon <= 1.0, "0 <= epsilon <= 1"),
            (isinstance(self.cover, int) and self.cover >= 1, "cover must be an int >= 1"),
            (_positive(self.learning_rate), "learning_rate must be a finite number > 0"),
            (isinstance(self.bits, int) and 1 <= self.bits <= _MAX_BITS, "1 <= bits <= 30"),
            (all(_is_interaction(q) for q in self.interactions), "interactions like 'ca'"),
        ]
        for ok, message in checks:
            if not ok:
                msg = f"Invalid VWPolicy parameter: {message}"
                raise InvalidInputError(msg)

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments, stored unchanged under the same names."""
        return {
            "exploration": self.exploration,
            "gamma_scale": self.gamma_scale,
            "gamma_exponent": self.gamma_exponent,
            "epsilon": self.epsilon,
            "cover": self.cover,
            "learning_rate": self.learning_rate,
            "interactions": self.interactions,
            "bits": self.bits,
            "quiet": self.quiet,
            **super().get_params(),
        }

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {"floor": 0.05, "seed": 7}
        yield {"exploration": "epsilon", "epsilon": 0.2, "seed": 3}
        yield {"exploration": "regcbopt", "seed": 5, "bits": 16}
        yield {"exploration": "cover", "cover": 3, "seed": 11}

    def _common_args(self) -> list[str]:
        args = ["--learning_rate", repr(float(self.learning_rate)), "--bit_precision"]
        args += [str(self.bits), "--random_seed", str(self.seed % 2**31)]
        for q in self.interactions:
            args += ["--quadratic", q]
        return [*args, "--quiet"] if self.quiet else args

    def _scorer_args(self) -> list[str]:
        return ["--cb_adf", "--cb_type", "mtr", *self._common_args()]

    def _explorer_args(self) -> list[str]:
        algo = ["--cover", str(self.cover)] if self.exploration == "cover" else []
        algo = algo or [f"--{self.exploration}"]
        return ["--cb_explore_adf", *algo, "--cb_type", "mtr", *self._common_args()]

    # ------------------------------------------------------------------ policy hooks

    def _example(
        self,
        context: Features,
        actions: Sequence[Action],
        label: tuple[int, float, float] | None = None,
    ) -> list[str]:
        return build_example(self._shared.line(context), self._lines.lines(actions), label=label)

    def _expected_rewards(self, context: Features, actions: Sequence[Action]) -> np.ndarray:
        costs = self._scorer.predict(self._example(context, actions))
        return np.asarray(rewards_from_costs(costs), dtype=float)

    def _pmf(
        self, context: Features, actions: Sequence[Action], expected: np.ndarray
    ) -> np.ndarray:
        if len(actions) == 1:
            return np.ones(1)
        costs = -expected
        if self.exploration == "squarecb":
            gamma = self.gamma_scale * float(self.n_updates) ** self.gamma_exponent
            return squarecb_pmf(costs, gamma)
        if self.exploration == "epsilon":
            return epsilon_greedy_pmf(costs, self.epsilon)
        assert self._explorer is not None  # noqa: S101 (set for every other exploration)
        return np.asarray(self._explorer.predict(self._example(context, actions)), dtype=float)

    def _learn(
        self,
        context: Features,
        actions: Sequence[Action],
        index: int,
        propensity: float,
        reward: float,
    ) -> None:
        # SquareCB's oracle is an unweighted regression (VW sets the label probability to 1).
        weight_p = 1.0 if self.exploration == "squarecb" else propensity
        self._scorer.learn(self._example(context, actions, label=(index, reward, weight_p)))
        if self._explorer is not None:
            self._explorer.learn(self._example(context, actions, label=(index, reward, propensity)))

    # ------------------------------------------------------------------ persistence

    def _dump_state(self) -> bytes:
        scorer = self._scorer.to_bytes()
        explorer = b"" if self._explorer is None else self._explorer.to_bytes()
        return _LEN.pack(len(scorer)) + scorer + explorer

    def _load_state(self, payload: bytes) -> None:
        if len(payload) < _LEN.size:
            msg = "VW policy payload is truncated"
            raise ModelFormatError(msg)
        (n,) = _LEN.unpack_from(payload)
        scorer, explorer = payload[_LEN.size : _LEN.size + n], payload[_LEN.size + n :]
        if len(scorer) != n or (self._explorer is None) != (not explorer):
            msg = "VW policy payload does not match the policy's exploration"
            raise ModelFormatError(msg)
        self.close()
        self._scorer = VWLearner(self._scorer_args(), model=scorer)
        if explorer:
            self._explorer = VWLearner(self._explorer_args(), model=explorer)

    def close(self) -> None:
        """Finish the VW workspaces now (they are also finished when the policy is collected)."""
        self._scorer.close()
        if self._explorer is not None:
            self._explorer.close()

    def __reduce__(self) -> tuple[Callable[[bytes], Self], tuple[bytes]]:
        """Pickle through the snapshot format (VW workspaces are not picklable)."""
        return type(self).from_bytes, (self.to_bytes(),)


def _finite(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _positive(x: object) -> bool:
    return _finite(x) and float(x) > 0  # type: ignore[arg-type]


def _is_interaction(q: object) -> bool:
    return isinstance(q, str) and len(q) >= 2 and q.isalpha()  # noqa: PLR2004

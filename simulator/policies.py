"""Simulator-only policies (the oracle and "no extra intervention") and policy lookup by name.

Both are real :class:`~bandit.policies.base.Policy` subclasses, so the replay treats them like
any learner. The oracle is told the true expected rewards of the current citizen by the
simulator (:meth:`OraclePolicy.set_truth`) before each decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from bandit.catalog import Family
from bandit.errors import InvalidInputError
from bandit.policies import POLICY_REGISTRY, Policy, make_policy
from bandit.policies.base import StaticPolicy
from bandit.types import Action, Features

SIMULATOR_POLICIES = ("oracle", "none")
CLI_POLICIES = ("uniform", "practice", "vw", "river", "oracle", "none")


def _one_hot(k: int, index: int) -> np.ndarray:
    out = np.zeros(k)
    out[index] = 1.0
    return out


class OraclePolicy(StaticPolicy):
    """Picks the action with the highest true expected reward (ties: first in order).

    Examples
    --------
    >>> from bandit.types import Action
    >>> oracle = OraclePolicy(floor=0.0)
    >>> oracle.set_truth({"a": 0.3, "b": 0.7})
    >>> oracle.choose({}, [Action("a"), Action("b")], event_id="e").chosen_action.id
    'b'
    """

    name = "oracle"
    tracks_errors = False  # its "estimates" are the truth of the current decision only

    def __init__(self, *, floor: float = 0.0, seed: int = 0) -> None:
        super().__init__(floor=floor, seed=seed)
        self._truth: dict[str, float] = {}

    def set_truth(self, truth: Mapping[str, float]) -> None:
        """Set the true expected reward of each action id for the next decision."""
        self._truth = dict(truth)

    def _expected_rewards(self, context: Features, actions: Sequence[Action]) -> np.ndarray:
        missing = [a.id for a in actions if a.id not in self._truth]
        if missing:
            msg = f"OraclePolicy has no true value for action(s) {missing[:3]}; call set_truth"
            raise InvalidInputError(msg)
        return np.asarray([self._truth[a.id] for a in actions], dtype=float)

    def _pmf(
        self, context: Features, actions: Sequence[Action], expected: np.ndarray
    ) -> np.ndarray:
        return _one_hot(len(actions), int(np.argmax(expected)))


class NoInterventionPolicy(StaticPolicy):
    """Always the standard minimum contact (what the control arm's baseline would be).

    Examples
    --------
    >>> from bandit.types import Action
    >>> acts = [Action("m", {"family": "mentor"}), Action("s", {"family": "standard_contact"})]
    >>> NoInterventionPolicy(floor=0.0).probabilities({}, acts).tolist()
    [0.0, 1.0]
    """

    name = "none"

    def __init__(self, *, floor: float = 0.0, seed: int = 0) -> None:
        super().__init__(floor=floor, seed=seed)

    def _expected_rewards(self, context: Features, actions: Sequence[Action]) -> np.ndarray:
        return np.zeros(len(actions))

    def _pmf(
        self, context: Features, actions: Sequence[Action], expected: np.ndarray
    ) -> np.ndarray:
        for i, action in enumerate(actions):
            if action.features.get("family") == Family.STANDARD_CONTACT.value:
                return _one_hot(len(actions), i)
        return np.full(len(actions), 1.0 / len(actions))


def build_policy(
    name: str, *, seed: int = 0, floor: float | None = None, delay: str = "hazard"
) -> Policy:
    """Build a policy by name: ``oracle``, ``none`` or any name in the bandit registry.

    ``vw`` is built as the service builds it (``service/runtime.py``): a discrete-time hazard
    learner when ``delay`` is ``"hazard"`` (the default), a reward regressor otherwise.

    Raises
    ------
    InvalidInputError
        For an unknown name, or a learner (``vw``, ``river``) not registered in this build.
    """
    if name == "oracle":
        return OraclePolicy(seed=seed, floor=0.0 if floor is None else floor)
    if name == "none":
        return NoInterventionPolicy(seed=seed, floor=0.0 if floor is None else floor)
    if name not in POLICY_REGISTRY:
        known = ", ".join(sorted({*POLICY_REGISTRY, *SIMULATOR_POLICIES}))
        msg = f"Policy {name!r} is not available (known: {known})"
        raise InvalidInputError(msg)
    params: dict[str, object] = {"seed": seed}
    if name == "vw":
        params["target"] = "hazard" if delay == "hazard" else "reward"
    if floor is not None:
        params["floor"] = floor
    return make_policy(name, **params)

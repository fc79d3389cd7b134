"""Small typed value objects shared by every layer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

FeatureValue: TypeAlias = float | int | str | bool
"""One feature value: numeric features are used as values, strings as categories."""

Features: TypeAlias = Mapping[str, FeatureValue]
"""Named features of a context or an action (model inputs only; never protected attributes)."""


@dataclass(frozen=True, slots=True)
class Action:
    """One candidate action as a policy sees it.

    Parameters
    ----------
    id
        Stable action id (catalog id, or the string form of an integer index for logged data).
    features
        Action features (family, sector, provider, length...).
    """

    id: str
    features: Features = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    """What a policy proposed for one event: the full pmf and the sampled action.

    Parameters
    ----------
    event_id
        Unique id of the decision event; with the policy seed it fixes the sampled action.
    context
        Model features used for the decision.
    actions
        The eligible actions, in the order the policy scored them.
    pmf
        Probability of each action in ``actions`` (same order); sums to 1, each >= the floor.
    chosen
        Index into ``actions`` of the sampled action.
    propensity
        ``pmf[chosen]``.
    expected_rewards
        The policy's estimate of the expected reward of each action (same order).
    model_version
        Version id of the model that produced the pmf.
    policy
        Registered policy name.

    Examples
    --------
    >>> d = Decision(event_id="e1", context={}, actions=(Action("a"), Action("b")),
    ...              pmf=(0.25, 0.75), chosen=1, propensity=0.75,
    ...              expected_rewards=(0.1, 0.2), model_version="v0", policy="uniform")
    >>> d.chosen_action.id, d.ranking()
    ('b', [1, 0])
    """

    event_id: str
    context: Features
    actions: tuple[Action, ...]
    pmf: tuple[float, ...]
    chosen: int
    propensity: float
    expected_rewards: tuple[float, ...]
    model_version: str
    policy: str

    @property
    def chosen_action(self) -> Action:
        """The sampled action."""
        return self.actions[self.chosen]

    @property
    def action_ids(self) -> tuple[str, ...]:
        """Ids of the eligible actions in pmf order."""
        return tuple(a.id for a in self.actions)

    def ranking(self) -> list[int]:
        """Indices of ``actions`` ordered best first (by probability, then expected reward)."""
        return sorted(
            range(len(self.actions)),
            key=lambda i: (-self.pmf[i], -self.expected_rewards[i], self.actions[i].id),
        )

    def probability_of(self, action_id: str) -> float:
        """Probability the policy gave ``action_id`` (0.0 when it was not eligible)."""
        for action, p in zip(self.actions, self.pmf, strict=True):
            if action.id == action_id:
                return p
        return 0.0

"""Permutation importance of a policy's context features on logged decisions.

Model-agnostic and honest about what it measures: how much the *model's output* depends on
each case fact over a real population of decisions, not a causal effect of the fact on the
outcome. For every feature (or feature group, e.g. all ``cv_*`` tokens together), its values
are shuffled across the rounds (the other features of each round stay as they were) and the
policy is asked again. Three changes are averaged over the rounds:

``reward_change``
    mean absolute change of the model's expected reward for the logged action (the ranking
    key: it is what the policy's pmf is computed from);
``pmf_change``
    mean total-variation distance between the pmf over the eligible offers before and after;
``top_change``
    share of rounds whose most probable offer changes.

Each is repeated with ``repeats`` independent permutations; the mean and the standard deviation
over the repeats are reported. A feature absent from a round is shuffled as "absent". The
permutations of a feature are drawn from ``numpy.random.default_rng([seed, crc32(name)])``,
so a feature's numbers depend only on the seed, the rounds and the model, not on which other
features are measured; the policy is only asked (``choose`` with a fixed event id never
changes its state), so the results are deterministic for a fixed seed.

Reference: Breiman, L. (2001). Random forests. Machine Learning 45, 5-32 (section 10);
Fisher, A., Rudin, C. and Dominici, F. (2019). All models are wrong, but many are useful.
JMLR 20(177).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from bandit.errors import InvalidInputError
from bandit.policies.base import Policy
from bandit.types import Action, Features, FeatureValue

CV_GROUP = "cv_tokens"
"""The CV token indicators (``cv_<token>``) are permuted together under this name."""
_EVENT_ID = "feature-importance"
_MISSING = object()


@dataclass(frozen=True, slots=True)
class Round:
    """One logged decision: the context, the eligible offers and the logged offer's index."""

    context: Features
    actions: tuple[Action, ...]
    logged: int


@dataclass(frozen=True, slots=True)
class FeatureImportance:
    """One feature's permutation importance (means and standard deviations over repeats)."""

    feature: str
    reward_change: float
    reward_change_sd: float
    pmf_change: float
    pmf_change_sd: float
    top_change: float
    top_change_sd: float
    present: float
    """Share of the rounds in which the feature is present (non-empty)."""


@dataclass(frozen=True, slots=True)
class ImportanceReport:
    """Permutation importance of one model version, most important feature first."""

    version: str
    policy: str
    rounds: int
    repeats: int
    seed: int
    features: tuple[FeatureImportance, ...] = field(default_factory=tuple)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (an undefined spread, one repeat only, as ``None``)."""
        out = asdict(self)
        out["features"] = [
            {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in asdict(f).items()}
            for f in self.features
        ]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ImportanceReport:
        """Read :meth:`to_dict`'s output (e.g. the file ``nbi importance --out`` writes).

        Raises
        ------
        InvalidInputError
            When a field is missing or of the wrong kind.
        """
        try:
            features = tuple(
                FeatureImportance(
                    str(f["feature"]),
                    *(_number(f[k]) for k in _NUMBERS),
                )
                for f in data["features"]
            )
            return cls(
                version=str(data["version"]),
                policy=str(data["policy"]),
                rounds=int(data["rounds"]),
                repeats=int(data["repeats"]),
                seed=int(data["seed"]),
                features=features,
                note=str(data.get("note", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"Not a feature-importance document: {exc}"
            raise InvalidInputError(msg) from None


_NUMBERS = (
    "reward_change",
    "reward_change_sd",
    "pmf_change",
    "pmf_change_sd",
    "top_change",
    "top_change_sd",
    "present",
)


def _number(value: object) -> float:
    """A JSON number (``None``: undefined)."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"expected a number, got {value!r}"
        raise TypeError(msg)
    return float(value)


def feature_groups(rounds: Sequence[Round]) -> dict[str, tuple[str, ...]]:
    """The features to permute: each context key, except that all ``cv_*`` keys form one
    group :data:`CV_GROUP`; sorted by name.

    Examples
    --------
    >>> r = Round({"age": 30, "cv_welding": 1.0, "cv_sql": 1.0}, (), 0)
    >>> feature_groups([r])
    {'age': ('age',), 'cv_tokens': ('cv_sql', 'cv_welding')}
    """
    keys = sorted({k for r in rounds for k in r.context})
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(CV_GROUP if key.startswith("cv_") else key, []).append(key)
    return {name: tuple(groups[name]) for name in sorted(groups)}


def _prediction(policy: Policy, context: Features, actions: Sequence[Action]) -> tuple[Any, Any]:
    decision = policy.choose(context, actions, event_id=_EVENT_ID)
    return np.asarray(decision.pmf), np.asarray(decision.expected_rewards)


def _same(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    # True, 1 and 1.0 compare equal but encode differently: compare the types too.
    return all(x is y or (type(x) is type(y) and x == y) for x, y in zip(a, b, strict=True))


def _with(context: Features, keys: tuple[str, ...], values: tuple[object, ...]) -> Features:
    out: dict[str, FeatureValue] = {k: v for k, v in context.items() if k not in keys}
    for key, value in zip(keys, values, strict=True):
        if value is not _MISSING:
            out[key] = value  # type: ignore[assignment]  # a value of the same key elsewhere
    return out


def _one_feature(
    policy: Policy,
    rounds: Sequence[Round],
    base: list[tuple[Any, Any]],
    keys: tuple[str, ...],
    rng: np.random.Generator,
    repeats: int,
) -> np.ndarray:
    """Per repeat: (reward change, pmf change, top change), shape ``(repeats, 3)``."""
    column = [tuple(r.context.get(k, _MISSING) for k in keys) for r in rounds]
    out = np.zeros((repeats, 3))
    for rep in range(repeats):
        perm = rng.permutation(len(rounds))
        totals = np.zeros(3)
        for i, r in enumerate(rounds):
            value = column[int(perm[i])]
            if _same(value, column[i]):
                continue  # the same values: the same prediction, nothing changes
            pmf, reward = _prediction(policy, _with(r.context, keys, value), r.actions)
            pmf0, reward0 = base[i]
            totals[0] += abs(float(reward[r.logged]) - float(reward0[r.logged]))
            totals[1] += 0.5 * float(np.abs(pmf - pmf0).sum())
            totals[2] += float(int(np.argmax(pmf)) != int(np.argmax(pmf0)))
        out[rep] = totals / len(rounds)
    return out


def permutation_importance(
    policy: Policy,
    rounds: Sequence[Round],
    *,
    repeats: int = 5,
    seed: int = 0,
    groups: Mapping[str, tuple[str, ...]] | None = None,
) -> list[FeatureImportance]:
    """Permutation importance of each feature group (see the module docstring).

    Parameters
    ----------
    policy
        Any policy; it is only asked, never taught.
    rounds
        Logged decisions (at least two).
    repeats
        Independent permutations per feature (at least one; the spread needs two).
    seed
        Seed of the permutations.
    groups
        Feature name -> context keys permuted together (default :func:`feature_groups`).

    Returns
    -------
    list of FeatureImportance
        Most important first (``reward_change``, then ``pmf_change``, then name).
    """
    if len(rounds) < 2:  # noqa: PLR2004 (a permutation of one round changes nothing)
        msg = f"Permutation importance needs at least 2 logged decisions, got {len(rounds)}"
        raise InvalidInputError(msg)
    if repeats < 1:
        msg = f"repeats must be >= 1, got {repeats}"
        raise InvalidInputError(msg)
    for r in rounds:
        if not 0 <= r.logged < len(r.actions):
            msg = f"Logged index {r.logged} out of range for {len(r.actions)} actions"
            raise InvalidInputError(msg)
    base = [_prediction(policy, r.context, r.actions) for r in rounds]
    chosen = feature_groups(rounds) if groups is None else dict(groups)
    out = []
    for name, keys in chosen.items():
        rng = np.random.default_rng([seed % 2**32, zlib.crc32(name.encode())])
        changes = _one_feature(policy, rounds, base, keys, rng, repeats)
        sd = changes.std(axis=0, ddof=1) if repeats > 1 else np.full(3, math.nan)
        present = sum(any(k in r.context for k in keys) for r in rounds) / len(rounds)
        mean = changes.mean(axis=0)
        out.append(
            FeatureImportance(
                name,
                float(mean[0]),
                float(sd[0]),
                float(mean[1]),
                float(sd[1]),
                float(mean[2]),
                float(sd[2]),
                float(present),
            )
        )
    out.sort(key=lambda f: (-f.reward_change, -f.pmf_change, f.feature))
    return out

"""Policies behind one interface, and a registry to build them by name.

Learners register lazily (their modules import VW or river only when built), so importing
this package is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from bandit.errors import InvalidInputError, ModelFormatError
from bandit.policies.base import Policy, RewardEstimate, apply_floor, read_snapshot_header

# name -> "module:Class"
POLICY_REGISTRY: dict[str, str] = {
    "uniform": "bandit.policies.uniform:UniformPolicy",
    "practice": "bandit.policies.practice:PracticeAsUsualPolicy",
    "vw": "bandit.policies.vw_policy:VWPolicy",
    "river": "bandit.policies.river_policy:RiverPolicy",
}


def policy_class(name: str) -> type[Policy]:
    """The policy class registered as ``name``."""
    try:
        target = POLICY_REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(POLICY_REGISTRY))
        msg = f"Unknown policy {name!r} (known: {known})"
        raise InvalidInputError(msg) from None
    module_name, _, class_name = target.partition(":")
    cls: type[Policy] = getattr(importlib.import_module(module_name), class_name)
    assert issubclass(cls, Policy)  # noqa: S101
    return cls


def make_policy(name: str, **params: Any) -> Policy:
    """Build a registered policy with keyword parameters."""
    return policy_class(name)(**params)


def policy_from_bytes(data: bytes) -> Policy:
    """Rebuild any registered policy from a snapshot made by :meth:`Policy.to_bytes`."""
    header, _ = read_snapshot_header(data)
    name = header.get("policy")
    if not isinstance(name, str) or name not in POLICY_REGISTRY:
        msg = f"Snapshot names an unknown policy {name!r}"
        raise ModelFormatError(msg)
    return policy_class(name).from_bytes(data)


__all__ = [
    "POLICY_REGISTRY",
    "Policy",
    "RewardEstimate",
    "apply_floor",
    "make_policy",
    "policy_class",
    "policy_from_bytes",
]

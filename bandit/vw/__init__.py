"""Vowpal Wabbit adapter: ADF example formatting and workspace lifecycle.

The only place in the project where rewards become VW costs (``cost = -reward``). Importing
this package does not import ``vowpalwabbit``; :mod:`bandit.vw.workspace` does.
"""

from __future__ import annotations

from bandit.vw.examples import (
    ActionLineCache,
    SharedLineCache,
    build_example,
    format_action,
    format_shared,
    labelled,
    rewards_from_costs,
    sanitise,
)

__all__ = [
    "ActionLineCache",
    "SharedLineCache",
    "build_example",
    "format_action",
    "format_shared",
    "labelled",
    "rewards_from_costs",
    "sanitise",
]

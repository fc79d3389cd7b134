"""Errors of the offline evaluation layer (all bad input, so all :class:`ValueError`)."""

from __future__ import annotations

from bandit.errors import InvalidInputError


class LoggedDataError(InvalidInputError):
    """A logged-bandit dataset is invalid (shapes, propensities, rewards, columns)."""


class TargetPolicyError(InvalidInputError):
    """Target-policy probabilities are invalid (shape, negative, rows not summing to 1)."""


class ExperimentDataError(InvalidInputError):
    """An RCT or fairness file is invalid (missing column, unknown group label, no rows)."""

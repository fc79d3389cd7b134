"""Domain errors of the decision core.

Bad input subclasses :class:`ValueError` so callers can catch it generically; the service maps
each class to one HTTP status in a single place (``service/errors.py``).
"""

from __future__ import annotations


class BanditError(Exception):
    """Base class of every error raised by the ``bandit`` package."""


class InvalidInputError(BanditError, ValueError):
    """An argument or a record has a value the domain does not allow."""


class InvalidContextError(InvalidInputError):
    """A citizen context failed validation (unknown field, wrong type, out of range)."""


class SensitiveDataError(InvalidContextError):
    """A free-text feature looks like a raw personal identifier (e.g. a CPR number)."""


class CatalogError(InvalidInputError):
    """A catalog file or entry is invalid (duplicate id, unknown family, negative length...)."""


class UnknownActionError(InvalidInputError):
    """An action id is not in the catalog."""


class NoEligibleActionError(InvalidInputError):
    """No action is eligible for this citizen after eligibility and capacity filtering."""


class ModelFormatError(BanditError):
    """A saved model snapshot cannot be read (corrupt file, other policy, newer format)."""


class UnknownEventError(BanditError, LookupError):
    """No decision record exists for this event id."""


class ConflictError(BanditError):
    """The request contradicts what is already stored (e.g. a different second outcome)."""


class ModelConfigError(BanditError):
    """A stored model does not match the configured policy parameters."""

"""Pseudonymisation at the edge and detection of raw identifiers in free text.

Raw citizen ids (CPR numbers) are replaced by keyed HMAC-SHA256 pseudonyms before anything is
stored, logged or counted. Only the pseudonym travels further.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from bandit.errors import InvalidInputError, SensitiveDataError

PSEUDONYM_PREFIX = "p_"
CLUSTER_PREFIX = "c_"
_CPR_PATTERN = re.compile(r"(?<!\d)(\d{6})[- ]?(\d{4})(?!\d)")
_MIN_KEY_BYTES = 16


def _check_key(key: bytes) -> None:
    if len(key) < _MIN_KEY_BYTES:
        msg = f"Expected a pseudonymisation key of at least {_MIN_KEY_BYTES} bytes, got {len(key)}"
        raise InvalidInputError(msg)


def pseudonymise(raw_id: str, key: bytes) -> str:
    """Return the HMAC-SHA256 pseudonym of a raw citizen id.

    Parameters
    ----------
    raw_id
        The raw identifier (e.g. a CPR number). Surrounding whitespace and a dash are ignored,
        so ``"010190-1234"`` and ``"0101901234"`` map to the same pseudonym.
    key
        Secret key (at least 16 bytes), kept out of the data store.

    Returns
    -------
    str
        ``"p_"`` followed by 64 hex characters.

    Examples
    --------
    >>> p = pseudonymise("010190-1234", b"0123456789abcdef")
    >>> p == pseudonymise("0101901234", b"0123456789abcdef"), p.startswith("p_"), len(p)
    (True, True, 66)
    """
    _check_key(key)
    normalised = raw_id.strip().replace("-", "").replace(" ", "")
    if not normalised:
        msg = "Expected a non-empty citizen id"
        raise InvalidInputError(msg)
    digest = hmac.new(key, normalised.encode("utf-8"), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest


def pseudonymise_cluster(raw_id: str, key: bytes, unit: str) -> str:
    """Return the HMAC-SHA256 pseudonym of a caseworker or job-centre id (a randomisation cluster).

    The HMAC input is ``"<unit>:<id>"``, so a caseworker id never maps to the pseudonym of a
    citizen or of a job centre with the same raw id. An id shaped like a CPR number is refused
    (:class:`SensitiveDataError`): a cluster id must never be a person's CPR number.

    Examples
    --------
    >>> c = pseudonymise_cluster("JC-101", b"0123456789abcdef", "jobcentre")
    >>> c.startswith("c_"), len(c), c == pseudonymise_cluster(" JC-101 ", b"0123456789abcdef", "jobcentre")
    (True, 66, True)
    >>> c == pseudonymise_cluster("JC-101", b"0123456789abcdef", "caseworker")
    False
    """
    _check_key(key)
    normalised = raw_id.strip()
    if not normalised:
        msg = f"Expected a non-empty {unit} id"
        raise InvalidInputError(msg)
    reject_cpr_like(f"{unit}_id", normalised)
    message = f"{unit}:{normalised}".encode()
    return CLUSTER_PREFIX + hmac.new(key, message, hashlib.sha256).hexdigest()


def is_pseudonym(value: str) -> bool:
    """Tell whether ``value`` has the shape of a pseudonym made by :func:`pseudonymise`."""
    return (
        value.startswith(PSEUDONYM_PREFIX)
        and len(value) == len(PSEUDONYM_PREFIX) + 64
        and all(c in "0123456789abcdef" for c in value[len(PSEUDONYM_PREFIX) :])
    )


def looks_like_cpr(text: str) -> bool:
    """Tell whether ``text`` contains something shaped like a Danish CPR number.

    A CPR number is ``DDMMYY-SSSS`` (dash optional). The date part must be a plausible day and
    month, so ordinary 10-digit numbers that cannot be dates are not flagged.

    Examples
    --------
    >>> looks_like_cpr("python 010190-1234"), looks_like_cpr("0101901234"), looks_like_cpr("sql")
    (True, True, False)
    >>> looks_like_cpr("9999999999")
    False
    """
    for match in _CPR_PATTERN.finditer(text):
        day, month = int(match.group(1)[:2]), int(match.group(1)[2:4])
        if 1 <= day <= 31 and 1 <= month <= 12:  # noqa: PLR2004
            return True
    return False


def reject_cpr_like(field: str, text: str) -> None:
    """Raise :class:`SensitiveDataError` if ``text`` looks like a CPR number.

    The message names the field but never repeats the value.
    """
    if looks_like_cpr(text):
        msg = f"Field `{field}` looks like a CPR number; send only the citizen id field"
        raise SensitiveDataError(msg)

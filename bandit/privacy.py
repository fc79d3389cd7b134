"""Pseudonymisation at the edge and detection of raw identifiers in free text.

Raw citizen ids (CPR numbers) are replaced by keyed HMAC-SHA256 pseudonyms before anything is
stored, logged or counted. Only the pseudonym travels further.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence

from bandit.errors import InvalidInputError, SensitiveDataError

PSEUDONYM_PREFIX = "p_"
CLUSTER_PREFIX = "c_"
_DATE_SEP = r"(?:\.|%2[eE])?"
_SEP = r"(?:[-./ +]|%2[dDeEfF]|%20)?"
_CPR_PATTERN = re.compile(
    rf"(?<![0-9])(\d\d){_DATE_SEP}(\d\d){_DATE_SEP}(\d\d){_SEP}(\d{{4}})(?![0-9])"
)
"""``DDMMYY-SSSS`` with the forms in domain use: no separator, ``-``, space, ``/``, ``+``,
dotted dates (``01.01.90-1234``) and their percent-encoded forms (``%2D``, ``%20``, ``%2E``)."""
_HEX_ID = re.compile(r"(?<![0-9A-Za-z])[0-9a-f]{16,}(?![0-9A-Za-z])")
"""Hex identifiers (event ids, pseudonyms): never CPR numbers, even with 10 digits in a row."""
_MIN_KEY_BYTES = 16
_MAX_JOINED_CHARS = 40


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
    return any(_plausible(match) for match in _cpr_matches(text))


def _plausible(match: re.Match[str]) -> bool:
    day, month = int(match.group(1)), int(match.group(2))
    return 1 <= day <= 31 and 1 <= month <= 12  # noqa: PLR2004


def _cpr_matches(text: str) -> list[re.Match[str]]:
    """CPR-shaped matches outside hex identifiers."""
    ids = [m.span() for m in _HEX_ID.finditer(text) if not m.group().isdigit()]
    return [
        m
        for m in _CPR_PATTERN.finditer(text)
        if not any(start <= m.start() and m.end() <= end for start, end in ids)
    ]


def redact_cpr(text: str, replacement: str = "[redacted]") -> str:
    """Replace every CPR-shaped number in ``text`` (plausible date or not: logs and error
    texts err on the safe side), except inside hex identifiers such as event ids.

    Examples
    --------
    >>> redact_cpr("GET /v1/decisions/01.01.90%2D1234/assignment")
    'GET /v1/decisions/[redacted]/assignment'
    >>> redact_cpr("event 3fa0101901234b0c9d8e7f6a5b4c3d2e learned")
    'event 3fa0101901234b0c9d8e7f6a5b4c3d2e learned'
    """
    out, last = [], 0
    for match in _cpr_matches(text):
        out += [text[last : match.start()], replacement]
        last = match.end()
    return "".join([*out, text[last:]])


def reject_cpr_like_tokens(field: str, tokens: Sequence[str]) -> None:
    """:func:`reject_cpr_like` for each token and for runs of up to three adjacent tokens
    (a CPR number split as ``["010190", "1234"]`` or ``["01.01.90", "-", "1234"]``)."""
    for i in range(len(tokens)):
        for j in range(i + 1, min(i + 3, len(tokens)) + 1):
            joined = "".join(tokens[i:j])
            if len(joined) <= _MAX_JOINED_CHARS:
                reject_cpr_like(field, joined)


def reject_cpr_like(field: str, text: str) -> None:
    """Raise :class:`SensitiveDataError` if ``text`` looks like a CPR number.

    The message names the field but never repeats the value.
    """
    if looks_like_cpr(text):
        msg = f"Field `{field}` looks like a CPR number; send only the citizen id field"
        raise SensitiveDataError(msg)

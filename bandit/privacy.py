"""Pseudonymisation at the edge and detection of raw identifiers in free text.

Raw citizen ids (CPR numbers) are replaced by keyed HMAC-SHA256 pseudonyms before anything is
stored, logged or counted. Only the pseudonym travels further.

Spellings. Both the pseudonym and the CPR detector see through the ways one number is written:
Unicode compatibility forms (NFKC: full-width digits, no-break spaces), any decimal digit
(Arabic-Indic ...), any dash (Unicode category Pd and the minus sign U+2212), any whitespace,
and invisible format characters (category Cf: soft hyphen, zero-width space, direction marks).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import unicodedata
from collections.abc import Sequence

from bandit.errors import InvalidInputError, SensitiveDataError

PSEUDONYM_PREFIX = "p_"
CLUSTER_PREFIX = "c_"
_MINUS_SIGN = "\u2212"
"""Not dash punctuation (it is a math symbol) but typed and pasted as one."""
_UNIT = r"(?:[-_/.+\s]|%(?:2[bBdDeEfF]|20|5[fF]))"
"""One separator character after :func:`_fold` (dashes, whitespace, ``_ / . +``) or its
percent-encoded form (``%2D``, ``%2E``, ``%2F``, ``%2B``, ``%20``, ``%5F``)."""
_GAP = rf"{_UNIT}{{1,3}}"
_DOT = r"(?:\.|%2[eE])"
_CPR_PATTERN = re.compile(
    rf"""
    (?<![0-9]) (?P<dd>[0-9]{{2}})
    (?:
        (?P<g1>{_GAP}) (?P<m1>[0-9]{{2}}) (?P=g1) [0-9]{{2}}          # DD-MM-YY
      | (?P<m2>[0-9]{{2}}) (?P<g2>{_GAP}) [0-9]{{2}} (?=(?P=g2)[0-9])  # DDMM YY (then the same gap)
      | {_DOT}? (?P<m3>[0-9]{{2}}) {_DOT}? [0-9]{{2}}                  # DDMMYY, DD.MM.YY
    )
    (?:{_GAP})? [0-9]{{4}} (?![0-9])
    """,
    re.VERBOSE,
)
"""``DDMMYY-SSSS`` after :func:`_fold`: ten digits, not inside a longer digit run (letters
around them hide nothing), grouped as ``DDMMYY SSSS``, ``DD MM YY SSSS`` or ``DDMM YY SSSS``.
A gap is a run of one to three separators (``-``, any dash or whitespace, ``_ / . +``,
percent-encoded forms), so ``010190-1234``, ``010190 - 1234``, ``01.01.90-1234``,
``01-01-90-1234`` and ``0101 90 1234`` all match. The gap before ``SSSS`` is free; two gaps
inside the date must be written alike (``01-01-90``, ``0101 90 1234``), a single dot may stand
alone (``01.0190``). This keeps out periods such as ``05/2010 - 05/2012`` and
``DD-MMYYSSSS`` shapes such as a model version's ``...c15-01234567``."""
_HEX_ID = re.compile(r"(?<![0-9A-Za-z])[0-9a-f]{32,}(?![0-9A-Za-z])")
"""Hex identifiers of 32 digits or more (event ids, request keys, pseudonyms): never CPR
numbers, even with ten digits in a row. Shorter hex runs (``abc0101901234def``) get no
exemption: they are as likely to be a CPR number padded with letters."""
_MIN_KEY_BYTES = 16
_MAX_JOINED_CHARS = 40


def _is_dash(ch: str) -> bool:
    return ch == _MINUS_SIGN or unicodedata.category(ch) == "Pd"


@functools.lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    """The detector's spelling of one non-ASCII character: decimal digits become ASCII digits,
    dashes ``-``, whitespace a space, format characters nothing, anything else its NFKC form
    (folded again, so ``①`` is ``1`` and ``．`` is ``.``)."""
    digit = unicodedata.decimal(ch, None)
    if digit is not None:
        return str(digit)
    if ch.isspace():
        return " "
    if _is_dash(ch):
        return "-"
    if unicodedata.category(ch) == "Cf":
        return ""
    compat = unicodedata.normalize("NFKC", ch)
    if compat == ch:
        return ch
    return "".join(c if c.isascii() else _fold_char(c) for c in compat)


def _fold(text: str) -> tuple[str, list[int] | None]:
    """``text`` in the detector's spelling and, when lengths changed, the index in ``text`` of
    every character of the folded text (``None``: same indices). ASCII text is unchanged."""
    if text.isascii():
        return text, None
    pieces = [c if c.isascii() else _fold_char(c) for c in text]
    folded = "".join(pieces)
    if len(folded) == len(text) and all(pieces):
        return folded, None
    return folded, [i for i, piece in enumerate(pieces) for _ in piece]


_ASCII_DROPPED = {i: None for i in range(128) if chr(i).isspace() or chr(i) == "-"}
"""What :func:`canonical_citizen_id` drops from an ASCII id (no ASCII character is a format
character or changes under NFKC)."""


def canonical_citizen_id(raw_id: str) -> str:
    """The form of a citizen id that :func:`pseudonymise` hashes.

    NFKC, then every whitespace, dash (category Pd, ``-`` included, and U+2212) and invisible
    format character (category Cf) is dropped and every decimal digit becomes an ASCII digit.
    An id of ASCII letters and digits with ``-`` or spaces keeps exactly the form it had
    before this canonicalisation (``strip`` and drop ``-`` and ``" "``), so stored pseudonyms
    stay valid.

    Examples
    --------
    >>> canonical_citizen_id(" 200185-1234 "), canonical_citizen_id("200185\u20131234")
    ('2001851234', '2001851234')
    >>> canonical_citizen_id("\uff12\uff10\uff10\uff11\uff18\uff15\u00a0\uff11\uff12\uff13\uff14")
    '2001851234'
    >>> canonical_citizen_id("sim-7-42")
    'sim742'
    """
    if raw_id.isascii():  # NFKC and the digit fold change no ASCII character
        return raw_id.translate(_ASCII_DROPPED)
    out = []
    for ch in unicodedata.normalize("NFKC", raw_id):
        if ch.isspace() or _is_dash(ch) or unicodedata.category(ch) == "Cf":
            continue
        digit = unicodedata.decimal(ch, None)
        out.append(ch if digit is None else str(digit))
    return "".join(out)


def _canonical_cluster_id(raw_id: str) -> str:
    """A caseworker or job-centre id with non-ASCII spellings of ASCII characters folded to
    ASCII (NFKC; other dashes ``-``, other whitespace a space, other digits ASCII digits,
    format characters dropped), then stripped. ASCII characters are never changed, so an
    ASCII id keeps the pseudonym it always had (``JC-101`` and ``CW 17`` keep their ``-`` and
    space: they are part of the id)."""
    out = []
    for ch in unicodedata.normalize("NFKC", raw_id):
        if ch.isascii():
            out.append(ch)
        elif unicodedata.category(ch) == "Cf":
            continue
        elif ch.isspace():
            out.append(" ")
        elif _is_dash(ch):
            out.append("-")
        else:
            digit = unicodedata.decimal(ch, None)
            out.append(ch if digit is None else str(digit))
    return "".join(out).strip()


def _check_key(key: bytes) -> None:
    if len(key) < _MIN_KEY_BYTES:
        msg = f"Expected a pseudonymisation key of at least {_MIN_KEY_BYTES} bytes, got {len(key)}"
        raise InvalidInputError(msg)


def pseudonymise(raw_id: str, key: bytes) -> str:
    """Return the HMAC-SHA256 pseudonym of a raw citizen id.

    Parameters
    ----------
    raw_id
        The raw identifier (e.g. a CPR number), hashed in its :func:`canonical_citizen_id`
        form: whitespace and dashes anywhere are ignored and digits are read in any script,
        so ``"010190-1234"``, ``"0101901234"``, ``"010190\u20131234"`` (en dash),
        ``"010190\u00a01234"`` (no-break space) and full-width digits map to the same
        pseudonym.
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
    >>> p == pseudonymise("010190\u2013\t1234", b"0123456789abcdef")
    True
    """
    _check_key(key)
    normalised = canonical_citizen_id(raw_id)
    if not normalised:
        msg = "Expected a non-empty citizen id"
        raise InvalidInputError(msg)
    digest = hmac.new(key, normalised.encode("utf-8"), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest


def pseudonymise_cluster(raw_id: str, key: bytes, unit: str) -> str:
    """Return the HMAC-SHA256 pseudonym of a caseworker or job-centre id (a randomisation cluster).

    The HMAC input is ``"<unit>:<id>"``, so a caseworker id never maps to the pseudonym of a
    citizen or of a job centre with the same raw id. The id is stripped and non-ASCII
    spellings of ASCII characters are folded to them (an en dash is ``-``, a no-break space
    a space, full-width digits ASCII digits); ASCII characters are kept as they are (``-`` and
    spaces are part of a cluster id), so every ASCII id keeps its pseudonym. An id shaped like
    a CPR number is refused (:class:`SensitiveDataError`): a cluster id must never be a
    person's CPR number.

    Examples
    --------
    >>> c = pseudonymise_cluster("JC-101", b"0123456789abcdef", "jobcentre")
    >>> c.startswith("c_"), len(c), c == pseudonymise_cluster(" JC-101 ", b"0123456789abcdef", "jobcentre")
    (True, 66, True)
    >>> c == pseudonymise_cluster("JC\u2013101", b"0123456789abcdef", "jobcentre")
    True
    >>> c == pseudonymise_cluster("JC-101", b"0123456789abcdef", "caseworker")
    False
    """
    _check_key(key)
    normalised = _canonical_cluster_id(raw_id)
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

    A CPR number is ``DDMMYY-SSSS``, written in any of the spellings :data:`_CPR_PATTERN`
    describes, in any digits and with any dash or space (see :func:`_fold`). The date part
    must be a plausible day and month, so ordinary 10-digit numbers that cannot be dates are
    not flagged; hex identifiers of 32 digits or more are exempt.

    Examples
    --------
    >>> looks_like_cpr("python 010190-1234"), looks_like_cpr("0101901234"), looks_like_cpr("sql")
    (True, True, False)
    >>> looks_like_cpr("010190\u20131234"), looks_like_cpr("01-01-90-1234")
    (True, True)
    >>> looks_like_cpr("abc0101901234def"), looks_like_cpr("0101 90 1234")
    (True, True)
    >>> looks_like_cpr("9999999999"), looks_like_cpr("2019-2021"), looks_like_cpr("20 12 34 56")
    (False, False, False)
    """
    return any(_plausible(match) for match in _cpr_matches(_fold(text)[0]))


def _plausible(match: re.Match[str]) -> bool:
    day = int(match["dd"])
    month = int(match["m1"] or match["m2"] or match["m3"])
    return 1 <= day <= 31 and 1 <= month <= 12  # noqa: PLR2004


def _cpr_matches(folded: str) -> list[re.Match[str]]:
    """CPR-shaped matches in folded text, outside hex identifiers: one at every position where
    one starts, overlapping ones included, so that a match of digits that cannot be a date
    (``12-34-56``) never hides a CPR number that shares digits with it."""
    match = _CPR_PATTERN.search(folded)
    if match is None:
        return []
    ids = [m.span() for m in _HEX_ID.finditer(folded) if not m.group().isdigit()]
    out = []
    while match is not None:
        if not any(start <= match.start() and match.end() <= end for start, end in ids):
            out.append(match)
        match = _CPR_PATTERN.search(folded, match.start() + 1)
    return out


def redact_cpr(text: str, replacement: str = "[redacted]") -> str:
    """Replace every CPR-shaped number in ``text`` (the spellings :func:`looks_like_cpr`
    finds, plausible date or not: logs and error texts err on the safe side), except inside
    hex identifiers such as event ids. Overlapping numbers are replaced as one.

    Examples
    --------
    >>> redact_cpr("GET /v1/decisions/01.01.90%2D1234/assignment")
    'GET /v1/decisions/[redacted]/assignment'
    >>> redact_cpr("event 3fa0101901234b0c9d8e7f6a5b4c3d2e learned")
    'event 3fa0101901234b0c9d8e7f6a5b4c3d2e learned'
    >>> redact_cpr("cpr \uff10\uff11\uff10\uff11\uff19\uff10\u2013\uff11\uff12\uff13\uff14 seen")
    'cpr [redacted] seen'
    >>> redact_cpr("ref 12-34-010190-1234.")
    'ref [redacted].'
    """
    folded, origin = _fold(text)
    spans: list[tuple[int, int]] = []
    for match in _cpr_matches(folded):
        start, end = match.span()
        if origin is not None:
            start, end = origin[start], origin[end - 1] + 1
        if spans and start < spans[-1][1]:
            spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
        else:
            spans.append((start, end))
    out, last = [], 0
    for start, end in spans:
        out += [text[last:start], replacement]
        last = end
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

"""Numbers formatted for people: percentages, percentage points, p-values, counts.

Every helper returns plain text (no HTML); missing or non-finite values become an en dash.
Signs use the typographic minus (U+2212), and a non-breaking space joins a number to its
unit so that ``78.3 %`` never breaks over two lines.

Examples
--------
>>> pct(0.78312), pp(-0.0137), p_value(0.0031), p_value(2e-7), count(16510)
('78.3\\xa0%', '−1.4\\xa0pp', 'p = 0.003', 'p < 0.001', '16,510')
"""

from __future__ import annotations

import math

MISSING = "–"
MINUS = "\u2212"
NBSP = "\u00a0"
_P_FLOOR = 0.001
_P_THREE_DECIMALS = 0.1


def finite(x: float | None) -> bool:
    """True for a real, finite number."""
    return x is not None and isinstance(x, int | float) and math.isfinite(x)


def _signed(text: str, *, sign: bool) -> str:
    if text.startswith("-"):
        return MINUS + text[1:]
    if sign and text.strip("0.,") != "":
        return "+" + text
    return text


def number(x: float | None, decimals: int = 2, *, sign: bool = False) -> str:
    """``x`` with thousands separators and fixed decimals; ``sign`` adds ``+`` to positives.

    Examples
    --------
    >>> number(16510.4, 0), number(-0.00001, 3), number(0.5, 1, sign=True)
    ('16,510', '0.000', '+0.5')
    """
    if not finite(x):
        return MISSING
    assert x is not None  # noqa: S101 (narrowed by finite)
    text = f"{x:,.{max(decimals, 0)}f}"
    if text.startswith("-") and text[1:].strip("0.,") == "":
        text = text[1:]  # no "-0.000"
    return _signed(text, sign=sign)


def pct(x: float | None, decimals: int = 1) -> str:
    """A share as a percentage: ``0.7831 -> '78.3 %'``."""
    return MISSING if not finite(x) else f"{number(100.0 * float(x or 0.0), decimals)}{NBSP}%"


def pp(x: float | None, decimals: int = 1, *, sign: bool = True) -> str:
    """A difference of shares in percentage points: ``0.049 -> '+4.9 pp'``."""
    if not finite(x):
        return MISSING
    return f"{number(100.0 * float(x or 0.0), decimals, sign=sign)}{NBSP}pp"


def count(n: float | None) -> str:
    """A count with thousands separators: ``16510 -> '16,510'``."""
    return number(n, 0)


def p_value(p: float | None) -> str:
    """``p = 0.003``, ``p = 0.12`` or ``p < 0.001`` (three decimals below 0.1, else two)."""
    if not finite(p):
        return f"p = {MISSING}"
    assert p is not None  # noqa: S101 (narrowed by finite)
    if p < _P_FLOOR:
        return "p < 0.001"
    return f"p = {p:.3f}" if p < _P_THREE_DECIMALS else f"p = {p:.2f}"


def decimals_for(se: float | None, *, scale: float = 1.0, lo: int = 0, hi: int = 3) -> int:
    """Decimals that show a standard error ``se`` (times ``scale``) with two significant digits.

    Examples
    --------
    >>> decimals_for(0.032, scale=100), decimals_for(0.004, scale=100), decimals_for(1234.0)
    (1, 2, 0)
    """
    if not finite(se) or not se:
        return min(max(1, lo), hi)
    digits = 1 - math.floor(math.log10(abs(float(se)) * scale))
    return min(max(digits, lo), hi)


def interval(low: float | None, high: float | None, fmt: str = "pp", decimals: int = 1) -> str:
    """``'−1.4 to +11.2 pp'`` (``fmt``: ``pp``, ``pct`` or ``number``)."""
    if not (finite(low) and finite(high)):
        return MISSING
    if fmt == "pp":
        a, b = number(100 * float(low or 0), decimals, sign=True), pp(high, decimals)
    elif fmt == "pct":
        a, b = number(100 * float(low or 0), decimals), pct(high, decimals)
    else:
        a, b = number(low, decimals, sign=True), number(high, decimals, sign=True)
    return f"{a} to {b}"

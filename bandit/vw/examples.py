"""Typed ADF (action-dependent features) formatter for VW's contextual-bandit reductions.

One example is a list of lines: a ``shared |c ...`` line with the context features and one
``|a ... |i id=...`` line per eligible action. ``-q ca`` crosses every context feature with the
offer's descriptive features (family, sector, provider, length), which several offers share,
so what is learned about one offer carries over to its family; the offer's own id sits in
namespace ``i`` and is learned as a main effect only (crossing it with every context feature
gives each of several hundred offers its own context model, which overfits and makes the
argmax chase noise). Numeric features are written as ``name:value`` (scaled by
:data:`bandit.encoding.NUMERIC_SCALES`), categorical ones as ``name=value`` indicators. The
action lines are cached per action, so the hot path only formats the shared line.

This module is the ONLY place in the project that converts a reward into a VW cost:
``cost = -reward`` (:func:`labelled`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache

from bandit.encoding import band_of, encode_value
from bandit.types import Action, Features, FeatureValue

CONTEXT_NAMESPACE = "c"
ACTION_NAMESPACE = "a"
FAMILY_NAMESPACE = "f"
SECTOR_NAMESPACE = "o"
LAST_SECTOR_NAMESPACE = "s"
ID_NAMESPACE = "i"
_SPECIAL = str.maketrans({"|": "_", ":": "_", " ": "_", "\t": "_", "\n": "_", "\r": "_"})
_MAX_CACHE = 20_000


def sanitise(text: str) -> str:
    """Replace the characters VW's text format treats specially (``|``, ``:``, whitespace).

    Examples
    --------
    >>> sanitise("a b|c:d")
    'a_b_c_d'
    """
    return text.translate(_SPECIAL)


@lru_cache(maxsize=8192)
def _token(name: str, value: FeatureValue, kind: str) -> str:
    # ``kind`` keeps True, 1 and 1.0 apart (they hash alike but encode differently).
    item = encode_value(name, value)
    if item is None:
        return ""
    token = sanitise(item[0])
    return token if item[1] == 1.0 else f"{token}:{item[1]:.6g}"


def _feature_tokens(features: Features, *, bands: bool = False) -> str:
    tokens = [_token(name, value, type(value).__name__) for name, value in features.items()]
    if bands:
        tokens += [_band(name, value) for name, value in features.items()]
    return " ".join(t for t in tokens if t)


@lru_cache(maxsize=8192)
def _band(name: str, value: FeatureValue) -> str:
    band = band_of(name, value)
    return "" if band is None else sanitise(band)


def format_shared(context: Features) -> str:
    """The ``shared`` line of an ADF example.

    Examples
    --------
    >>> format_shared({"weeks_unemployed": 13, "education": "bachelor", "cv_c++ dev": 1.0})
    'shared |c weeks_unemployed:0.25 education=bachelor cv_c++_dev weeks_unemployed_band=1'
    >>> format_shared({"last_sector": "it"})
    'shared |c last_sector=it |s last_sector=it'
    """
    tokens: list[str] = []
    bands: list[str] = []
    cache = _SHARED_TOKENS
    sector: str | None = None
    for name, value in context.items():
        hit = cache.get((name, value, type(value)))
        if hit is None:
            hit = _shared_tokens(name, value)
        token, band = hit
        if token:
            tokens.append(token)
        if band:
            bands.append(band)
        if name == "last_sector":
            sector = token
    if bands:
        tokens += bands
    line = f"shared |{CONTEXT_NAMESPACE} {' '.join(tokens)}"
    if sector is not None:
        line += f" |{LAST_SECTOR_NAMESPACE} {sector}"
    return line


_SHARED_TOKENS: dict[tuple[str, FeatureValue, type], tuple[str, str]] = {}
"""``(name, value, type)`` -> (token, band token) of a context feature ("" when absent): one
dict look-up per feature on the hot path (the same strings as ``_token`` and ``_band``)."""


def _shared_tokens(name: str, value: FeatureValue) -> tuple[str, str]:
    key = (name, value, type(value))
    hit = _SHARED_TOKENS.get(key)
    if hit is None:
        hit = (_token(name, value, type(value).__name__), _band(name, value))
        if len(_SHARED_TOKENS) >= _MAX_CACHE:
            _SHARED_TOKENS.clear()
        _SHARED_TOKENS[key] = hit
    return hit


def format_action(action: Action) -> str:
    """The unlabelled line of one action: family (``f``), sector (``o``), other features
    (``a``) and the id (``i``), each in its own namespace so that interactions can pick them.

    Examples
    --------
    >>> format_action(Action("M 1", {"family": "mentor", "sector": "it", "length_weeks": 13}))
    '|f family=mentor |o sector=it |a length_weeks:0.25 |i id=M_1'
    """
    features = action.features
    family = {k: v for k, v in features.items() if k == "family"}
    sector = {k: v for k, v in features.items() if k == "sector"}
    rest = {k: v for k, v in features.items() if k not in ("family", "sector")}
    return (
        f"|{FAMILY_NAMESPACE} {_feature_tokens(family)} |{SECTOR_NAMESPACE} "
        f"{_feature_tokens(sector)} |{ACTION_NAMESPACE} {_feature_tokens(rest)} "
        f"|{ID_NAMESPACE} id={sanitise(action.id)}"
    )


def labelled(action_line: str, reward: float, probability: float) -> str:
    """Prefix an action line with the CB label ``0:cost:probability``, ``cost = -reward``.

    Examples
    --------
    >>> labelled("|a id=x", 1.0, 0.25)
    '0:-1:0.25 |a id=x'
    """
    cost = 0.0 - float(reward)  # 0.0 - x avoids printing a negative zero
    return f"0:{cost:.9g}:{float(probability):.9g} {action_line}"


class ActionLineCache:
    """Formatted action lines, cached by action id.

    A hit needs the same :class:`~bandit.types.Action` object (catalog actions are reused) or
    equal features; a changed action is re-formatted.

    Examples
    --------
    >>> cache = ActionLineCache()
    >>> acts = [Action("a", {"family": "mentor"}), Action("b")]
    >>> cache.lines(acts)
    ['|f family=mentor |o  |a  |i id=a', '|f  |o  |a  |i id=b']
    >>> cache.lines(acts) is not None, len(cache)
    (True, 2)
    """

    def __init__(self) -> None:
        self._lines: dict[str, tuple[Action, str]] = {}

    def __len__(self) -> int:
        return len(self._lines)

    def line(self, action: Action) -> str:
        """The formatted line of ``action``."""
        hit = self._lines.get(action.id)
        if hit is not None and (hit[0] is action or hit[0].features == action.features):
            return hit[1]
        if len(self._lines) >= _MAX_CACHE:
            self._lines.clear()
        text = format_action(action)
        self._lines[action.id] = (action, text)
        return text

    def lines(self, actions: Sequence[Action]) -> list[str]:
        """Formatted lines of ``actions`` in order."""
        return [self.line(a) for a in actions]


class SharedLineCache:
    """The last few formatted ``shared`` lines, keyed by the context's content.

    A decision's context is formatted when choosing and again when learning its reward; this
    small LRU avoids the second formatting when the reward follows soon.

    Examples
    --------
    >>> cache = SharedLineCache(size=2)
    >>> cache.line({"education": "master"}) is cache.line({"education": "master"})
    True
    """

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._lines: OrderedDict[tuple[tuple[str, FeatureValue], ...], str] = OrderedDict()

    def line(self, context: Features) -> str:
        """The ``shared`` line of ``context``."""
        key = tuple(context.items())
        text = self._lines.get(key)
        if text is not None:
            self._lines.move_to_end(key)
            return text
        text = format_shared(context)
        self._lines[key] = text
        if len(self._lines) > self.size:
            self._lines.popitem(last=False)
        return text


def build_example(
    shared: str,
    action_lines: Sequence[str],
    *,
    label: tuple[int, float, float] | None = None,
) -> list[str]:
    """Assemble a multi-line ADF example; ``label = (index, reward, probability)`` to learn.

    Examples
    --------
    >>> build_example("shared |c x", ["|a id=p", "|a id=q"], label=(1, 0.0, 0.5))
    ['shared |c x', '|a id=p', '0:0:0.5 |a id=q']
    """
    lines = [shared, *action_lines]
    if label is not None:
        index, reward, probability = label
        lines[index + 1] = labelled(action_lines[index], reward, probability)
    return lines


def rewards_from_costs(costs: Sequence[float]) -> list[float]:
    """VW's predicted costs (``--cb_adf`` scores) back to expected rewards: ``reward = -cost``.

    Examples
    --------
    >>> rewards_from_costs([-0.25, 0.0])
    [0.25, 0.0]
    """
    return [0.0 - float(c) for c in costs]

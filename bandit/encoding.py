"""Typed encoding of context and action features into ``(name, value)`` pairs for learners.

Both learners (the VW adapter and the river policy) use this one encoding, so a feature means
the same thing to both: numeric features are scaled to roughly ``[0, 1]`` by a known scale
(weeks / 52, age / 70, ...), booleans become indicators, strings become ``name=value``
indicator features. Protected attributes never appear here unless a caller put them in the
features mapping on purpose.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from bandit.errors import InvalidInputError
from bandit.types import Features, FeatureValue

MIN_ABS_VALUE = 1e-6
"""Numeric feature values smaller than this in magnitude (after scaling) are dropped."""

NUMERIC_SCALES: Mapping[str, float] = {
    "age": 70.0,
    "weeks_unemployed": 52.0,
    "benefit_history_weeks": 52.0,
    "labour_demand_index": 5.0,
    "length_weeks": 52.0,
    "prior_spells": 5.0,
    "weeks_since_last_spell": 52.0,
}
"""Divisors of known numeric features (others are used as given)."""


BANDS: Mapping[str, tuple[float, ...]] = {
    "weeks_unemployed": (13.0, 26.0, 52.0),
    "benefit_history_weeks": (26.0, 52.0),
    "age": (30.0, 50.0),
    "labour_demand_index": (1.0, 1.5),
    "weeks_since_last_spell": (26.0, 52.0),
}
"""Cut points of the bands added next to known numeric features (the legal and programme
thresholds of domain.md: 13 and 26 weeks, long-term history, age 50, high demand, a return
within a year)."""


def band_of(name: str, value: FeatureValue) -> str | None:
    """The band indicator of a numeric feature with known cut points, else ``None``.

    A linear model learns a threshold effect (long-term unemployment, age 50+) from a band
    indicator, not from the scaled number alone.

    Examples
    --------
    >>> band_of("weeks_unemployed", 30), band_of("age", 25), band_of("education", "master")
    ('weeks_unemployed_band=2', 'age_band=0', None)
    """
    cuts = BANDS.get(name)
    if cuts is None or isinstance(value, (bool, str)):
        return None
    index = sum(1 for cut in cuts if float(value) >= cut)
    return f"{name}_band={index}"


def encode_value(name: str, value: FeatureValue) -> tuple[str, float] | None:
    """Encode one feature as ``(name, value)``; ``None`` when it carries nothing (false/zero).

    Examples
    --------
    >>> encode_value("weeks_unemployed", 26), encode_value("family", "mentor")
    (('weeks_unemployed', 0.5), ('family=mentor', 1.0))
    >>> encode_value("health_limitation", True), encode_value("single_parent", False)
    (('health_limitation', 1.0), None)
    >>> encode_value("labour_demand_index", 1.8e-174) is None
    True
    """
    if isinstance(value, bool):
        return (name, 1.0) if value else None
    if isinstance(value, (int, float)):
        scaled = float(value) / NUMERIC_SCALES.get(name, 1.0)
        if not math.isfinite(scaled):
            msg = f"Feature `{name}` must be a finite number, got {value!r}"
            raise InvalidInputError(msg)
        # Values below float32 resolution carry nothing and made VW's normalised update NaN
        # (seen with 1.8e-174): treat them as absent.
        return (name, scaled) if abs(scaled) >= MIN_ABS_VALUE else None
    return (f"{name}={value}", 1.0)


def encode_features(features: Features) -> list[tuple[str, float]]:
    """Encode every feature of a mapping, in its iteration order, dropping empty ones.

    Examples
    --------
    >>> encode_features({"age": 35, "education": "bachelor", "single_parent": False})
    [('age', 0.5), ('education=bachelor', 1.0)]
    """
    out = []
    for name, value in features.items():
        item = encode_value(name, value)
        if item is not None:
            out.append(item)
    return out

"""Human oversight: how often caseworkers override the suggestion (issue 9, item 7).

An *override* is an assignment that differs from the suggestion the caseworker was shown: a
treatment-arm decision served ``live`` with a recorded assignment (control, shadow and kill
switch decisions showed nothing, so there is nothing to override). The override rate is
overrides over such assignments, counted per caseworker, per job centre, per group of the
parity dimensions (:data:`service.parity.DIMENSIONS` without the model-dependent need
quartile: ``gender`` and ``origin`` from the protected attributes stored apart, plus
``target_group`` and ``long_term_unemployed``) and overall.

A caseworker who follows nearly every suggestion (rate at most ``low_rate`` over at least
``min_assignments`` assignments in the window) may be rubber-stamping the model: automation
bias, and no longer the human decision GDPR art. 22 asks for. Metrics carry only the *number*
of such caseworkers (per-caseworker labels would be unbounded); the per-caseworker table
(short pseudonyms, never a raw id) is served to the admin by ``GET /v1/oversight``.

With ``min_assignments = n`` and ``low_rate = r``, a caseworker whose true override rate is
``p`` is flagged with probability ``P(Binomial(n, p) <= floor(r n))``: for the defaults (50,
0.02) and ``p = 0.1`` that is 0.9^50 + 50 x 0.1 x 0.9^49 = 3.4 %.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING

from bandit.control import Group
from bandit.errors import UnknownEventError
from bandit.records import DecisionRecord
from service.parity import DIMENSIONS, long_term_group

if TYPE_CHECKING:
    from service.config import Settings
    from service.store.base import DecisionStore

DAY_SECONDS = 24 * 3600.0

OVERSIGHT_DIMENSIONS = ("gender", "origin", "target_group", "long_term_unemployed")
"""The dimensions whose groups get an override rate (fixed label values: DIMENSIONS)."""
SHORT_KEY_CHARS = 14
"""``c_`` and 12 hex characters (48 bits) of a caseworker or job-centre pseudonym."""
UNATTRIBUTED = "unattributed"
"""Key of assignments whose request named no caseworker (or job centre)."""


def short_key(key: str | None) -> str:
    """The displayed form of a caseworker or job-centre pseudonym.

    Examples
    --------
    >>> short_key("c_" + "ab" * 32), short_key(None)
    ('c_abababababab', 'unattributed')
    """
    return UNATTRIBUTED if key is None else key[:SHORT_KEY_CHARS]


@dataclass
class OverrideCount:
    """Assignments after a shown suggestion and how many of them differ from it."""

    assignments: int = 0
    overrides: int = 0

    @property
    def rate(self) -> float:
        """Overrides over assignments (NaN without assignments)."""
        return self.overrides / self.assignments if self.assignments else math.nan

    def add(self, overridden: bool) -> None:
        """Count one assignment."""
        self.assignments += 1
        self.overrides += int(overridden)


@dataclass
class OversightReport:
    """Override counts overall, per caseworker, per job centre and per (dimension, group)."""

    min_assignments: int
    low_rate: float
    overall: OverrideCount = field(default_factory=OverrideCount)
    caseworkers: dict[str, OverrideCount] = field(default_factory=dict)
    jobcentres: dict[str, OverrideCount] = field(default_factory=dict)
    groups: dict[tuple[str, str], OverrideCount] = field(default_factory=dict)

    def assessed(self) -> dict[str, OverrideCount]:
        """Named caseworkers with at least ``min_assignments`` assignments."""
        return {
            k: c
            for k, c in self.caseworkers.items()
            if k != UNATTRIBUTED and c.assignments >= self.min_assignments
        }

    def low_override(self) -> list[str]:
        """Assessed caseworkers whose override rate is at most ``low_rate`` (lowest first)."""
        low = [(c.rate, k) for k, c in self.assessed().items() if c.rate <= self.low_rate]
        return [k for _, k in sorted(low)]


def overridden(record: DecisionRecord) -> bool | None:
    """Whether the caseworker overrode a shown suggestion (``None``: nothing to override).

    Examples
    --------
    >>> from bandit.control import Group
    >>> r = DecisionRecord("e", 0.0, "p_x", Group.TREATMENT, {}, ("A", "B"), (0.5, 0.5),
    ...                    "A", 0.5, "m", "p", assigned="B")
    >>> overridden(r), overridden(r.with_assignment("A", None))
    (True, False)
    """
    if record.group is not Group.TREATMENT or record.mode != "live":
        return None
    if record.recommended is None or record.assigned is None:
        return None
    return record.assigned != record.recommended


def oversight_report(
    items: Iterable[tuple[DecisionRecord, Mapping[str, str] | None]],
    *,
    min_assignments: int,
    low_rate: float,
) -> OversightReport:
    """Override counts of ``(record, groups)`` pairs (``groups``: dimension -> group, or
    ``None`` when unknown, e.g. erased meanwhile: then only the group counts skip it).

    Examples
    --------
    >>> from bandit.control import Group
    >>> def rec(i, cw, assigned):
    ...     return DecisionRecord(f"e{i}", 0.0, "p_x", Group.TREATMENT, {}, ("A", "B"),
    ...                           (0.5, 0.5), "A", 0.5, "m", "p", assigned=assigned,
    ...                           caseworker_key=cw)
    >>> items = [(rec(i, "c_" + "1" * 64, "A"), {"gender": "male"}) for i in range(3)]
    >>> items += [(rec(3, "c_" + "2" * 64, "B"), {"gender": "female"})]
    >>> report = oversight_report(items, min_assignments=3, low_rate=0.0)
    >>> report.overall.rate, report.low_override(), report.groups[("gender", "female")].rate
    (0.25, ['c_111111111111'], 1.0)
    """
    report = OversightReport(min_assignments=min_assignments, low_rate=low_rate)
    for record, groups in items:
        over = overridden(record)
        if over is None:
            continue
        report.overall.add(over)
        cw = report.caseworkers.setdefault(short_key(record.caseworker_key), OverrideCount())
        cw.add(over)
        jc = report.jobcentres.setdefault(short_key(record.jobcentre_key), OverrideCount())
        jc.add(over)
        for dimension in OVERSIGHT_DIMENSIONS:
            group = None if groups is None else groups.get(dimension)
            if group is not None and group in DIMENSIONS[dimension]:
                report.groups.setdefault((dimension, group), OverrideCount()).add(over)
    return report


def report_to_dict(report: OversightReport) -> dict[str, object]:
    """The report as JSON-ready data (``GET /v1/oversight``; ``nbi report --oversight``)."""

    def row(key: str, c: OverrideCount) -> dict[str, object]:
        rate = None if math.isnan(c.rate) else round(c.rate, 6)
        return {"key": key, "assignments": c.assignments, "overrides": c.overrides, "rate": rate}

    low = set(report.low_override())
    caseworkers = [
        row(k, c) | {"low_override": k in low}
        for k, c in sorted(report.caseworkers.items(), key=lambda kc: (-kc[1].assignments, kc[0]))
    ]
    return {
        "min_assignments": report.min_assignments,
        "low_rate": report.low_rate,
        "overall": row("all", report.overall),
        "caseworkers_assessed": len(report.assessed()),
        "caseworkers_low_override": len(low),
        "caseworkers": caseworkers,
        "jobcentres": [
            row(k, c)
            for k, c in sorted(
                report.jobcentres.items(), key=lambda kc: (-kc[1].assignments, kc[0])
            )
        ],
        "groups": [
            {"dimension": d, "group": g} | row(f"{d}:{g}", c)
            for (d, g), c in sorted(report.groups.items())
        ],
    }


def record_groups(store: DecisionStore, record: DecisionRecord) -> dict[str, str] | None:
    """The record's groups of :data:`OVERSIGHT_DIMENSIONS` (protected attributes read from
    the store, where they are kept apart from the record); ``None`` if erased meanwhile."""
    try:
        attrs = store.get_protected(record.event_id)
    except UnknownEventError:
        return None
    gender = None if attrs is None else attrs.gender
    origin = None if attrs is None else attrs.origin
    return {
        "gender": "unknown" if gender is None else gender.value,
        "origin": "unknown" if origin is None else origin.value,
        "target_group": str(record.context.get("target_group", "")),
        "long_term_unemployed": long_term_group(record.context.get("weeks_unemployed")),
    }


def window_oversight(
    store: DecisionStore, records: Iterable[DecisionRecord], settings: Settings
) -> OversightReport:
    """:func:`oversight_report` of ``records`` (the monitoring window's decisions) with the
    settings' thresholds; protected attributes are read only for assigned live decisions."""
    assigned = (r for r in records if overridden(r) is not None)
    return oversight_report(
        ((r, record_groups(store, r)) for r in assigned),
        min_assignments=settings.oversight_min_assignments,
        low_rate=settings.oversight_low_override_rate,
    )


def current_oversight(store: DecisionStore, settings: Settings, now: float) -> OversightReport:
    """The oversight report of the decisions of ``(now - window, now]`` (at most
    ``monitor_max_records`` of them), as the monitor computes it."""
    low = now - settings.monitor_window_days * DAY_SECONDS
    in_window = (r for r in store.iter_records() if low < r.timestamp <= now)
    return window_oversight(store, islice(in_window, settings.monitor_max_records), settings)

"""The catalog of interventions (the action set) and its validated loading.

A catalog file is CSV or YAML with one entry per offer; see :data:`CATALOG_COLUMNS`. The
default catalog (``bandit/data/default_catalog.csv``) holds 330 offers generated from the
families in ``shared/domain.md`` by :func:`generate_default_catalog`.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bandit.context import TargetGroup
from bandit.errors import CatalogError, UnknownActionError
from bandit.types import Action, FeatureValue


class Family(StrEnum):
    """Intervention families (domain.md section 5.2)."""

    STANDARD_CONTACT = "standard_contact"
    INDIVIDUAL_MEETINGS = "individual_meetings"
    GROUP_MEETINGS = "group_meetings"
    JOB_SEARCH_COURSE = "job_search_course"
    PRIVATE_INTERNSHIP = "private_internship"
    PUBLIC_INTERNSHIP = "public_internship"
    PRIVATE_WAGE_SUBSIDY = "private_wage_subsidy"
    PUBLIC_WAGE_SUBSIDY = "public_wage_subsidy"
    SIX_WEEK_COURSE = "six_week_course"
    CLASSROOM_TRAINING = "classroom_training"
    MENTOR = "mentor"


CATALOG_COLUMNS = (
    "id",
    "name",
    "family",
    "length_weeks",
    "capacity",
    "target_groups",
    "min_weeks_unemployed",
    "max_weeks_unemployed",
    "min_age",
    "max_age",
    "sector",
    "provider",
    "cost_dkk",
)
"""Columns of a catalog file. ``capacity`` may be empty (unlimited); ``target_groups`` is a
``;``-separated list; ``max_weeks_unemployed`` may be empty; ``cost_dkk`` (the programme's cost
per participant in DKK) may be empty or absent: the family default of
:data:`DEFAULT_WEEKLY_COST_DKK` times ``length_weeks``."""

DEFAULT_WEEKLY_COST_DKK: dict[Family, float] = {
    Family.STANDARD_CONTACT: 0.0,
    Family.INDIVIDUAL_MEETINGS: 300.0,
    Family.GROUP_MEETINGS: 250.0,
    Family.JOB_SEARCH_COURSE: 1500.0,
    Family.PRIVATE_INTERNSHIP: 500.0,
    Family.PUBLIC_INTERNSHIP: 500.0,
    Family.PRIVATE_WAGE_SUBSIDY: 3200.0,
    Family.PUBLIC_WAGE_SUBSIDY: 5000.0,
    Family.SIX_WEEK_COURSE: 4000.0,
    Family.CLASSROOM_TRAINING: 3000.0,
    Family.MENTOR: 1000.0,
}
"""Default programme cost per participant-week in DKK, by family: all **[assumption]**
(shared/domain.md 5.3 says programme costs come "from municipal price lists [to obtain]"; it
gives no figures). Standard contact is the no-programme baseline (0). Meetings: caseworker
time; internships: the caseworker's set-up and follow-up; wage subsidies: the subsidy paid to
the employer; courses: the provider's fee; mentor: a few mentor hours a week. See
docs/cost_benefit.md. Replace them with the municipality's price list via ``cost_dkk``."""

CAPACITY_TIMEZONE = "Europe/Copenhagen"
"""The clock of the capacity week: seats reset at Monday 00:00 local time of the job centres."""


def capacity_week(when: float) -> str:
    """The capacity week of Unix time ``when``: ``YYYY-Www`` (ISO week in
    :data:`CAPACITY_TIMEZONE`). ``capacity`` counts seats per such week; every replica derives
    the same week from the time, whatever its own time zone.

    Examples
    --------
    >>> capacity_week(1_780_264_799.0), capacity_week(1_780_264_800.0)  # Sunday/Monday 00:00 CEST
    ('2026-W22', '2026-W23')
    """
    from datetime import datetime
    from zoneinfo import ZoneInfo

    iso = datetime.fromtimestamp(when, ZoneInfo(CAPACITY_TIMEZONE)).isocalendar()
    return f"{iso.year:04d}-W{iso.week:02d}"


_REQUIRED = ("id", "name", "family", "length_weeks")
MAX_LENGTH_WEEKS = 104


@dataclass(frozen=True, slots=True)
class Intervention:
    """One offer in the portfolio.

    Parameters
    ----------
    id
        Stable unique id (e.g. ``"PRIV_PRAKTIK_012"``).
    name
        Human-readable name shown to caseworkers.
    family
        Intervention family.
    length_weeks
        Planned length in weeks (>= 1).
    capacity
        Seats per capacity week (:func:`capacity_week`: ISO weeks of
        :data:`CAPACITY_TIMEZONE`, reset Monday 00:00), or ``None`` for no limit.
    target_groups
        Benefit schemes the offer is open to.
    min_weeks_unemployed, max_weeks_unemployed
        Window of the current spell in which the offer is allowed (legal rules).
    min_age, max_age
        Age window.
    sector, provider
        Descriptive action features.
    cost_dkk
        Programme cost per participant in DKK, or ``None`` for the family default
        (:data:`DEFAULT_WEEKLY_COST_DKK` times ``length_weeks``); see :attr:`programme_cost_dkk`.
    """

    id: str
    name: str
    family: Family
    length_weeks: int
    capacity: int | None = None
    target_groups: frozenset[TargetGroup] = field(default_factory=lambda: frozenset(TargetGroup))
    min_weeks_unemployed: int = 0
    max_weeks_unemployed: int | None = None
    min_age: int = 16
    max_age: int = 70
    sector: str = "any"
    provider: str = "jobcenter"
    cost_dkk: float | None = None

    @property
    def programme_cost_dkk(self) -> float:
        """Programme cost per participant in DKK: ``cost_dkk`` or the family default.

        Examples
        --------
        >>> Intervention("M1", "Mentor", Family.MENTOR, length_weeks=4).programme_cost_dkk
        4000.0
        """
        if self.cost_dkk is not None:
            return self.cost_dkk
        return DEFAULT_WEEKLY_COST_DKK[self.family] * self.length_weeks

    def features(self) -> dict[str, FeatureValue]:
        """Action features used by the models."""
        return {
            "family": self.family.value,
            "sector": self.sector,
            "provider": self.provider,
            "length_weeks": self.length_weeks,
        }

    def as_action(self) -> Action:
        """This offer as a policy :class:`~bandit.types.Action`."""
        return Action(self.id, self.features())


class Catalog(Sequence[Intervention]):
    """An ordered, validated set of interventions with lookup by id.

    Examples
    --------
    >>> cat = default_catalog()
    >>> len(cat) >= 300, cat[cat.index_of(cat[5].id)] is cat[5]
    (True, True)
    """

    def __init__(self, interventions: Iterable[Intervention]) -> None:
        self._items = tuple(interventions)
        if not self._items:
            msg = "Expected a catalog with at least one intervention"
            raise CatalogError(msg)
        self._index: dict[str, int] = {}
        for i, item in enumerate(self._items):
            _check_intervention(item, row=i + 1)
            if item.id in self._index:
                msg = f"Duplicate intervention id {item.id!r} (entries {self._index[item.id] + 1} and {i + 1})"
                raise CatalogError(msg)
            self._index[item.id] = i
        self._actions = tuple(item.as_action() for item in self._items)
        self._ids = tuple(item.id for item in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i: int) -> Intervention:  # type: ignore[override]
        return self._items[i]

    def __iter__(self) -> Iterator[Intervention]:
        return iter(self._items)

    def __contains__(self, item: object) -> bool:
        if isinstance(item, str):
            return self.has(item)
        return item in self._items

    def has(self, action_id: str) -> bool:
        """True when ``action_id`` is in the catalog (a dict lookup)."""
        return action_id in self._index

    def index_of(self, action_id: str) -> int:
        """Position of ``action_id``; raise :class:`UnknownActionError` if absent."""
        try:
            return self._index[action_id]
        except KeyError:
            msg = f"Unknown action id {action_id!r}: not in the catalog"
            raise UnknownActionError(msg) from None

    def get(self, action_id: str) -> Intervention:
        """The intervention with ``action_id``; raise :class:`UnknownActionError` if absent."""
        return self._items[self.index_of(action_id)]

    def action(self, action_id: str) -> Action:
        """The cached policy :class:`~bandit.types.Action` for ``action_id``."""
        return self._actions[self.index_of(action_id)]

    @property
    def ids(self) -> tuple[str, ...]:
        """All ids in catalog order."""
        return self._ids

    def families(self) -> tuple[Family, ...]:
        """Families present in the catalog, in enum order."""
        present = {item.family for item in self._items}
        return tuple(f for f in Family if f in present)


def _check_intervention(item: Intervention, *, row: int) -> None:
    where = f"entry {row} ({item.id!r})"
    if not item.id or not item.id.strip():
        msg = f"Catalog entry {row}: empty id"
        raise CatalogError(msg)
    if not 1 <= item.length_weeks <= MAX_LENGTH_WEEKS:
        msg = f"Catalog {where}: length_weeks must be in 1..{MAX_LENGTH_WEEKS}, got {item.length_weeks}"
        raise CatalogError(msg)
    if item.capacity is not None and item.capacity < 0:
        msg = f"Catalog {where}: capacity must be >= 0 or empty, got {item.capacity}"
        raise CatalogError(msg)
    if item.min_weeks_unemployed < 0:
        msg = f"Catalog {where}: min_weeks_unemployed must be >= 0, got {item.min_weeks_unemployed}"
        raise CatalogError(msg)
    if (
        item.max_weeks_unemployed is not None
        and item.max_weeks_unemployed < item.min_weeks_unemployed
    ):
        msg = f"Catalog {where}: max_weeks_unemployed is below min_weeks_unemployed"
        raise CatalogError(msg)
    if not 16 <= item.min_age <= item.max_age <= 70:  # noqa: PLR2004
        msg = f"Catalog {where}: need 16 <= min_age <= max_age <= 70, got {item.min_age}..{item.max_age}"
        raise CatalogError(msg)
    if not item.target_groups:
        msg = f"Catalog {where}: target_groups is empty"
        raise CatalogError(msg)
    if item.cost_dkk is not None and not (math.isfinite(item.cost_dkk) and item.cost_dkk >= 0):
        msg = (
            f"Catalog {where}: cost_dkk must be a finite number >= 0 or empty, got {item.cost_dkk}"
        )
        raise CatalogError(msg)


# --------------------------------------------------------------------------- parsing


def _parse_int(value: Any, column: str, row: int, *, optional: bool = False) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if optional:
            return None
        msg = f"Catalog row {row}: missing value for `{column}`"
        raise CatalogError(msg)
    if isinstance(value, float) and math.isnan(value):
        return _parse_int(None, column, row, optional=optional)
    try:
        number = float(value)
    except (TypeError, ValueError):
        msg = f"Catalog row {row}: `{column}` must be an integer, got {value!r}"
        raise CatalogError(msg) from None
    if not number.is_integer():
        msg = f"Catalog row {row}: `{column}` must be an integer, got {value!r}"
        raise CatalogError(msg)
    return int(number)


def _parse_cost(value: Any, row: int) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        msg = f"Catalog row {row}: `cost_dkk` must be a number of DKK, got {value!r}"
        raise CatalogError(msg) from None
    if not math.isfinite(number) or number < 0:
        msg = f"Catalog row {row}: `cost_dkk` must be a finite number >= 0, got {value!r}"
        raise CatalogError(msg)
    return number


def _parse_target_groups(value: Any, row: int) -> frozenset[TargetGroup]:
    if value is None or (isinstance(value, str) and not value.strip()):
        return frozenset(TargetGroup)
    names = value if isinstance(value, list) else str(value).split(";")
    groups = set()
    for name in names:
        try:
            groups.add(TargetGroup(str(name).strip()))
        except ValueError:
            allowed = ", ".join(g.value for g in TargetGroup)
            msg = f"Catalog row {row}: unknown target group {name!r} (allowed: {allowed})"
            raise CatalogError(msg) from None
    return frozenset(groups)


def intervention_from_mapping(data: Mapping[str, Any], *, row: int) -> Intervention:
    """Build one :class:`Intervention` from a file row; raise :class:`CatalogError` if invalid."""
    unknown = set(data) - set(CATALOG_COLUMNS)
    if unknown:
        msg = f"Catalog row {row}: unknown column(s) {sorted(unknown)}; allowed: {list(CATALOG_COLUMNS)}"
        raise CatalogError(msg)
    for column in _REQUIRED:
        if data.get(column) in (None, ""):
            msg = f"Catalog row {row}: missing value for `{column}`"
            raise CatalogError(msg)
    try:
        family = Family(str(data["family"]).strip())
    except ValueError:
        allowed = ", ".join(f.value for f in Family)
        msg = f"Catalog row {row}: unknown family {data['family']!r} (allowed: {allowed})"
        raise CatalogError(msg) from None
    length = _parse_int(data["length_weeks"], "length_weeks", row)
    assert length is not None  # noqa: S101 (required above)
    if length < 0:
        msg = f"Catalog row {row}: negative length_weeks {length}"
        raise CatalogError(msg)

    def opt_int(column: str, default: int | None) -> int | None:
        parsed = _parse_int(data.get(column), column, row, optional=True)
        return default if parsed is None else parsed

    return Intervention(
        id=str(data["id"]).strip(),
        name=str(data["name"]).strip(),
        family=family,
        length_weeks=length,
        capacity=opt_int("capacity", None),
        target_groups=_parse_target_groups(data.get("target_groups"), row),
        min_weeks_unemployed=opt_int("min_weeks_unemployed", 0) or 0,
        max_weeks_unemployed=opt_int("max_weeks_unemployed", None),
        min_age=opt_int("min_age", 16) or 16,
        max_age=opt_int("max_age", 70) or 70,
        sector=str(data.get("sector") or "any").strip(),
        provider=str(data.get("provider") or "jobcenter").strip(),
        cost_dkk=_parse_cost(data.get("cost_dkk"), row),
    )


def load_catalog(path: str | Path) -> Catalog:
    """Load and validate a catalog from a ``.csv``, ``.yaml`` or ``.yml`` file.

    Raises
    ------
    CatalogError
        With the row and column of the first problem (duplicate id, unknown family, negative
        length, ...).
    """
    path = Path(path)
    if not path.is_file():
        msg = f"Catalog file not found: {path}"
        raise CatalogError(msg)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        rows: list[Mapping[str, Any]] = list(csv.DictReader(io.StringIO(text)))
    elif path.suffix.lower() in {".yaml", ".yml"}:
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            msg = f"Catalog file {path} is not valid YAML: {exc}"
            raise CatalogError(msg) from None
        if isinstance(loaded, dict) and "interventions" in loaded:
            loaded = loaded["interventions"]
        if not isinstance(loaded, list) or not all(isinstance(r, dict) for r in loaded):
            msg = f"Catalog file {path}: expected a list of entries (or `interventions:` list)"
            raise CatalogError(msg)
        rows = loaded
    else:
        msg = f"Catalog file {path}: unsupported extension {path.suffix!r} (use .csv or .yaml)"
        raise CatalogError(msg)
    return Catalog(intervention_from_mapping(r, row=i + 1) for i, r in enumerate(rows))


def catalog_to_csv(catalog: Catalog) -> str:
    """Serialise a catalog in the CSV file format read by :func:`load_catalog`."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CATALOG_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for item in catalog:
        writer.writerow(
            {
                "id": item.id,
                "name": item.name,
                "family": item.family.value,
                "length_weeks": item.length_weeks,
                "capacity": "" if item.capacity is None else item.capacity,
                "target_groups": ";".join(sorted(g.value for g in item.target_groups)),
                "min_weeks_unemployed": item.min_weeks_unemployed,
                "max_weeks_unemployed": ""
                if item.max_weeks_unemployed is None
                else item.max_weeks_unemployed,
                "min_age": item.min_age,
                "max_age": item.max_age,
                "sector": item.sector,
                "provider": item.provider,
                "cost_dkk": "" if item.cost_dkk is None else f"{item.cost_dkk:g}",
            }
        )
    return buffer.getvalue()


def default_catalog() -> Catalog:
    """The shipped default catalog (330 offers across all families)."""
    ref = resources.files("bandit") / "data" / "default_catalog.csv"
    with resources.as_file(ref) as path:
        return load_catalog(path)


# --------------------------------------------------------------------------- generation

# family -> (count, length range in weeks, capacity range per week or None, min weeks unemployed,
#            target groups, providers)
_SECTORS = (
    "construction",
    "manufacturing",
    "retail",
    "hospitality",
    "transport",
    "health_care",
    "education",
    "it",
    "finance",
    "public_admin",
    "culture",
    "cleaning",
)
_ALL = "dagpenge;kontanthjaelp"
_FAMILY_SPECS: dict[
    Family, tuple[int, tuple[int, int], tuple[int, int] | None, int, str, tuple[str, ...]]
] = {
    Family.STANDARD_CONTACT: (1, (1, 1), None, 0, _ALL, ("jobcenter",)),
    Family.INDIVIDUAL_MEETINGS: (12, (13, 13), (20, 60), 0, _ALL, ("jobcenter", "anden_aktor")),
    Family.GROUP_MEETINGS: (15, (1, 4), (15, 40), 0, _ALL, ("jobcenter", "a_kasse")),
    Family.JOB_SEARCH_COURSE: (
        30,
        (1, 3),
        (8, 25),
        0,
        _ALL,
        ("anden_aktor", "a_kasse", "jobcenter"),
    ),
    Family.PRIVATE_INTERNSHIP: (60, (4, 8), (1, 4), 0, _ALL, ("private_employer",)),
    Family.PUBLIC_INTERNSHIP: (40, (4, 8), (1, 5), 0, _ALL, ("municipality", "region")),
    Family.PRIVATE_WAGE_SUBSIDY: (45, (13, 26), (1, 3), 26, _ALL, ("private_employer",)),
    Family.PUBLIC_WAGE_SUBSIDY: (30, (8, 17), (1, 4), 26, _ALL, ("municipality", "region")),
    Family.SIX_WEEK_COURSE: (45, (2, 6), (6, 16), 5, "dagpenge", ("amu_center", "erhvervsskole")),
    Family.CLASSROOM_TRAINING: (
        30,
        (8, 26),
        (8, 20),
        0,
        _ALL,
        ("erhvervsskole", "vuc", "university"),
    ),
    Family.MENTOR: (22, (4, 26), (2, 10), 0, _ALL, ("jobcenter", "anden_aktor", "ngo")),
}
_FAMILY_LABELS = {
    Family.STANDARD_CONTACT: "Standard minimum contact (no extra intervention)",
    Family.INDIVIDUAL_MEETINGS: "Intensified individual meetings",
    Family.GROUP_MEETINGS: "Group information meeting",
    Family.JOB_SEARCH_COURSE: "Job-search and CV course",
    Family.PRIVATE_INTERNSHIP: "Company internship (private)",
    Family.PUBLIC_INTERNSHIP: "Internship (public workplace)",
    Family.PRIVATE_WAGE_SUBSIDY: "Wage-subsidy job (private)",
    Family.PUBLIC_WAGE_SUBSIDY: "Wage-subsidy job (public)",
    Family.SIX_WEEK_COURSE: "6-week job-directed course",
    Family.CLASSROOM_TRAINING: "Classroom training",
    Family.MENTOR: "Mentor",
}


def generate_default_catalog(seed: int = 2019) -> Catalog:
    """Generate the default catalog deterministically from the family specifications.

    Wage subsidies start at week 26 (the exceptions for citizens without upper-secondary
    education, aged 50+ or single parents are applied by the eligibility filter). The 6-week
    course is for dagpenge recipients from week 5 and within month 9.
    """
    rng = np.random.default_rng(seed)
    items: list[Intervention] = []
    for family, (count, (lo, hi), cap, min_weeks, groups, providers) in _FAMILY_SPECS.items():
        prefix = family.value.upper()
        for k in range(count):
            sector = "any" if family in _GENERIC_FAMILIES else _SECTORS[k % len(_SECTORS)]
            provider = providers[int(rng.integers(len(providers)))]
            length = int(rng.integers(lo, hi + 1))
            capacity = None if cap is None else int(rng.integers(cap[0], cap[1] + 1))
            label = _FAMILY_LABELS[family]
            if count == 1:
                name = label
            elif sector == "any":
                name = f"{label} #{k + 1:02d}"
            else:
                name = f"{label}: {sector.replace('_', ' ')} #{k + 1:02d}"
            items.append(
                Intervention(
                    id=f"{prefix}_{k + 1:03d}",
                    name=name,
                    family=family,
                    length_weeks=length,
                    capacity=capacity,
                    target_groups=_parse_target_groups(groups, k),
                    min_weeks_unemployed=min_weeks,
                    max_weeks_unemployed=39 if family is Family.SIX_WEEK_COURSE else None,
                    min_age=16,
                    max_age=70,
                    sector=sector,
                    provider=provider,
                    cost_dkk=DEFAULT_WEEKLY_COST_DKK[family] * length,
                )
            )
    return Catalog(items)


_GENERIC_FAMILIES = frozenset(
    {Family.STANDARD_CONTACT, Family.INDIVIDUAL_MEETINGS, Family.GROUP_MEETINGS, Family.MENTOR}
)

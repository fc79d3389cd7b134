"""Reading and checking the columns of a trial file (one row per citizen).

The column convention, shared by the simulator's ``decisions.csv`` and the analysis
(docs/decisions.md, "One column convention for trial files"):

``group``
    The arm label (``treatment`` / ``control`` by default).
``employed`` (or any outcome column)
    0/1 (job within the horizon) or a continuous outcome such as benefit weeks.
``complied`` (or any received column)
    1 when the citizen received what the recommender arm offers, recorded in both arms.
``weeks_to_job``
    Weeks from the decision to the job, empty when no job was observed.
``follow_up_weeks`` (optional)
    Weeks the citizen was followed; without it everybody is followed ``horizon`` weeks.
an event column (optional)
    lifelines style: 1 = event at the time column, 0 = censored at the time column.

Each citizen is censored at ``min(follow_up, horizon)``: a job after that is not counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from offline_eval.errors import ExperimentDataError

DEFAULT_RECEIVED_COL = "complied"
DEFAULT_TIME_COL = "weeks_to_job"
DEFAULT_FOLLOW_UP_COL = "follow_up_weeks"
HIDDEN_COLUMNS = frozenset({"latent_type"})
"""The simulator's hidden truth: no real analysis can observe it, so it is never a covariate."""
POST_TREATMENT_COLUMNS = frozenset(
    {
        "recommended",
        "assigned",
        "recommended_family",
        "assigned_family",
        "complied",
        "p_recommended",
        "shown_recommended",
        "p_assigned",
        "regret",
        "employed",
        "reward",
        "job_week",
        "weeks_to_job",
        "benefit_weeks",
        "benefit_dkk",
        "programme_cost_dkk",
        "true_cost_dkk",
    }
)
"""Columns of the simulator's ``decisions.csv`` recorded at or after the decision (what was
recommended and received, and the outcomes): adjusting for one can bias the ITT."""
_TRUE = {"true"}
_FALSE = {"false"}


def _have(frame: pd.DataFrame) -> str:
    return ", ".join(map(str, frame.columns))


def require_columns(frame: pd.DataFrame, names: Sequence[str], what: str) -> None:
    """Raise :class:`ExperimentDataError` naming the missing columns and the present ones."""
    missing = [c for c in names if c not in frame.columns]
    if missing:
        msg = f"Missing column(s) {', '.join(missing)} {what} (have: {_have(frame)})"
        raise ExperimentDataError(msg)


def numeric_column(frame: pd.DataFrame, name: str, *, what: str) -> np.ndarray:
    """Column ``name`` as floats (``True``/``False`` as 1/0; empty cells as NaN).

    Raises :class:`ExperimentDataError` on a value that is neither empty nor a number.
    """
    raw = frame[name]
    if raw.dtype == bool:
        return raw.to_numpy(dtype=float)
    if raw.dtype == object:
        lowered = raw.map(lambda v: v.strip().lower() if isinstance(v, str) else v)
        raw = lowered.map(lambda v: 1.0 if v in _TRUE else 0.0 if v in _FALSE else v)
        raw = raw.map(lambda v: float(v) if isinstance(v, bool) else v)
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
    if bad.any():
        example = frame[name][bad].iloc[0]
        msg = f"Column {name!r} ({what}) must be numeric, found {example!r}"
        raise ExperimentDataError(msg)
    return values.to_numpy(dtype=float)


def examples(values: Sequence[object], limit: int = 5) -> str:
    """``values`` for a message: all of them, or the first ``limit`` and how many there are.

    Examples
    --------
    >>> examples(["a", "b"]), examples([str(i) for i in range(9)], limit=2)
    ("['a', 'b']", "['0', '1', ...] (9 distinct)")
    """
    if len(values) <= limit:
        return repr(list(values))
    shown = ", ".join(repr(v) for v in values[:limit])
    return f"[{shown}, ...] ({len(values)} distinct)"


def arms(
    frame: pd.DataFrame, group_col: str, treatment_label: str, control_label: str
) -> np.ndarray:
    """Boolean array: True for the treatment arm; every row must carry one of the two labels."""
    require_columns(frame, [group_col], "in the RCT file")
    labels = frame[group_col].astype(str)
    unknown = sorted(set(labels) - {treatment_label, control_label})
    if unknown:
        msg = (
            f"Unknown group label(s) {examples(unknown)} in column {group_col!r} "
            f"(expected {treatment_label!r} or {control_label!r})"
        )
        raise ExperimentDataError(msg)
    treated = (labels == treatment_label).to_numpy()
    if treated.sum() < 2 or (~treated).sum() < 2:  # noqa: PLR2004
        msg = "Need at least 2 citizens in each group"
        raise ExperimentDataError(msg)
    return treated


def outcome(frame: pd.DataFrame, outcome_col: str) -> np.ndarray:
    """The outcome as floats; numeric, no missing values."""
    require_columns(frame, [outcome_col], "in the RCT file")
    y = numeric_column(frame, outcome_col, what="the outcome")
    if not np.isfinite(y).all():
        msg = f"Column {outcome_col!r} must be numeric with no missing values"
        raise ExperimentDataError(msg)
    return y


def is_binary(values: np.ndarray) -> bool:
    """True when every value is 0 or 1."""
    return bool(np.isin(values, (0.0, 1.0)).all())


@dataclass(frozen=True)
class Received:
    """The received column (both arms); empty cells count as not received."""

    column: str
    values: np.ndarray
    n_missing: int


def received(frame: pd.DataFrame, received_col: str | None) -> Received | None:
    """The received column, or ``None`` when it is not named and ``complied`` is absent."""
    name = received_col or DEFAULT_RECEIVED_COL
    if received_col is None and name not in frame.columns:
        return None
    require_columns(frame, [name], "for the received treatment (--received-col)")
    d = numeric_column(frame, name, what="received treatment")
    missing = ~np.isfinite(d)
    return Received(name, np.where(missing, 0.0, d), int(missing.sum()))


def covariates(frame: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
    """Covariate matrix (categorical columns as dummies, first level dropped)."""
    missing = [c for c in names if c not in frame.columns]
    if missing:
        msg = f"Missing covariate column(s): {', '.join(missing)} (have: {_have(frame)})"
        raise ExperimentDataError(msg)
    x = pd.get_dummies(frame[list(names)], drop_first=True, dtype=float).to_numpy(dtype=float)
    if not np.isfinite(x).all():
        msg = "Covariates must have no missing values"
        raise ExperimentDataError(msg)
    return x


@dataclass(frozen=True)
class TimeToEvent:
    """Durations (event or censoring time) and event flags, with the columns they came from."""

    duration: np.ndarray
    event: np.ndarray
    time_col: str
    event_col: str | None
    follow_up_col: str | None
    horizon: float


@dataclass(frozen=True)
class SurvivalColumns:
    """Names of the time-to-event columns (``None``: the defaults when present)."""

    time_col: str | None = None
    event_col: str | None = None
    follow_up_col: str | None = None


def time_to_event(frame: pd.DataFrame, cols: SurvivalColumns, horizon: float) -> TimeToEvent | None:
    """Censored times to event, or ``None`` when no time column is named or present.

    Examples
    --------
    >>> f = pd.DataFrame({"weeks_to_job": [3.0, None, 30.0], "follow_up_weeks": [52, 52, 20]})
    >>> t = time_to_event(f, SurvivalColumns(), horizon=52)
    >>> t.duration.tolist(), t.event.tolist()  # the third job came after its follow-up
    ([3.0, 52.0, 20.0], [True, False, False])
    """
    time_col = cols.time_col or DEFAULT_TIME_COL
    if cols.time_col is None and time_col not in frame.columns:
        if cols.event_col or cols.follow_up_col:
            msg = "An event or follow-up column needs a time column (--time-col)"
            raise ExperimentDataError(msg)
        return None
    require_columns(frame, [time_col], "for the time to event (--time-col)")
    time = numeric_column(frame, time_col, what="weeks to the event")
    _non_negative(time, time_col)
    limit = np.full(time.shape, float(horizon))
    follow_up_col = _follow_up_name(frame, cols.follow_up_col)
    if follow_up_col is not None:
        follow = numeric_column(frame, follow_up_col, what="weeks of follow-up")
        if not np.isfinite(follow).all():
            msg = f"Column {follow_up_col!r} (weeks of follow-up) must have no missing values"
            raise ExperimentDataError(msg)
        _non_negative(follow, follow_up_col)
        limit = np.minimum(limit, follow)
    has_time = np.isfinite(time)
    raw_event = _event_flags(frame, cols.event_col) if cols.event_col else has_time
    if (raw_event & ~has_time).any():
        msg = (
            f"{int((raw_event & ~has_time).sum())} row(s) have an event but no time in {time_col!r}"
        )
        raise ExperimentDataError(msg)
    event = raw_event & (np.where(has_time, time, np.inf) <= limit)
    censor = np.minimum(np.where(has_time & ~raw_event, time, np.inf), limit)
    duration = np.where(event, time, censor)
    return TimeToEvent(duration, event, time_col, cols.event_col, follow_up_col, float(horizon))


def outcome_time_conflicts(frame: pd.DataFrame, y: np.ndarray, data: TimeToEvent) -> int:
    """Rows whose 0/1 outcome says "no job" although the time column has a job earlier than
    the latest job of a row whose outcome says "job".

    Under the column convention ``employed`` is a job within the outcome's horizon and
    ``weeks_to_job`` is empty when there was no job. Whatever that horizon is, it is at least
    the latest ``weeks_to_job`` of an ``employed = 1`` row, so ``employed = 0`` with an earlier
    job contradicts itself (a job exactly at or after that week may be past the horizon and is
    not counted). With an event column only the rows with an event have a job time.

    Examples
    --------
    >>> f = pd.DataFrame({"weeks_to_job": [4.0, None, 30.0, 25.0]})
    >>> y = np.array([0.0, 0.0, 0.0, 1.0])
    >>> outcome_time_conflicts(f, y, time_to_event(f, SurvivalColumns(), 26))  # week 4 only
    1
    """
    time = numeric_column(frame, data.time_col, what="weeks to the event")
    job = np.isfinite(time)
    if data.event_col is not None:
        job &= _event_flags(frame, data.event_col)
    employed = job & (y == 1.0)
    if not employed.any():
        return 0
    last = float(time[employed].max())
    return int((job & (y == 0.0) & (time < last)).sum())


def _follow_up_name(frame: pd.DataFrame, follow_up_col: str | None) -> str | None:
    if follow_up_col is None:
        return DEFAULT_FOLLOW_UP_COL if DEFAULT_FOLLOW_UP_COL in frame.columns else None
    require_columns(frame, [follow_up_col], "for the follow-up (--follow-up-col)")
    return follow_up_col


def _event_flags(frame: pd.DataFrame, event_col: str) -> np.ndarray:
    require_columns(frame, [event_col], "for the event flag (--event-col)")
    e = numeric_column(frame, event_col, what="event flag")
    if not is_binary(e):
        msg = f"Column {event_col!r} (event flag) must be 0/1 with no missing values"
        raise ExperimentDataError(msg)
    return e.astype(bool)


def _non_negative(values: np.ndarray, name: str) -> None:
    if (values[np.isfinite(values)] < 0).any() or np.isinf(values).any():
        msg = f"Column {name!r} must hold weeks >= 0 (finite)"
        raise ExperimentDataError(msg)

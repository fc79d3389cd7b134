"""Export the service's own decision records for researchers (``nbi export``).

From either store, for decisions made between two dates (UTC, inclusive), three files:

``OUT`` (``.parquet`` or ``.csv``): the logged-bandit file ``nbi evaluate`` reads
    (``offline_eval/logs.py``): one row per recommender-arm decision served live whose reward
    is known (settled, not censored): ``action`` (index in ``<stem>.meta.json``'s
    ``action_ids``, the catalog order), ``reward``, ``propensity``, ``pmf_<k>`` (0 for an
    offer that was not eligible), ``timestamp`` and the scalar context features (list
    features such as ``cv_tokens`` are left out). The logged action is the *recommendation*,
    so estimates are values of recommending, with caseworker compliance as it was.
``<stem>.rct.<suffix>``: the trial file ``nbi experiment`` reads
    (``offline_eval/trial_data.py``): ``group``, ``employed`` (0/1, job within the horizon),
    ``complied`` (followed the recommendation; 0 in control), ``weeks_to_job`` (empty: no
    job), ``follow_up_weeks`` and ``censored``. By default the rows are the decisions whose
    horizon outcome is known, the population of ``/v1/experiment/summary``, so the ITT is the
    same. ``include_open=True`` adds censored (dropout) and still-open decisions with
    ``censored=1``, ``employed=0`` and ``follow_up_weeks`` = the weeks observed: for
    Kaplan-Meier and the log-rank test, not for the ITT.
``<stem>.fairness.<suffix>`` (only with ``protected=True``, the researcher role): the trial
    rows plus ``gender``, ``origin`` (protected attributes, only here), ``age_band`` and the
    recommended family, for ``nbi fairness``.
``<stem>.shadow.<suffix>`` and ``<stem>.shadow.target.npy``: the shadow-mode decisions for
    off-policy evaluation of the policy that ran in shadow (:func:`shadow_row`). In shadow
    the *caseworker* is the logging policy: the logged action is the caseworker's assignment,
    ``propensity`` and ``pmf_<k>`` are practice as usual's probabilities
    (:class:`~bandit.policies.practice.PracticeAsUsualPolicy`, the model of caseworkers'
    choices the simulator's caseworkers follow) and the target file holds the policy's logged
    pmf, row for row: ``nbi evaluate <stem>.shadow.<suffix> --target-probs
    <stem>.shadow.target.npy``. The estimate is only as good as the caseworker model (see
    docs/decisions.md, "Shadow records and their propensity").

No file holds an event id, a pseudonym or a raw id. Each export is audited.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bandit.control import Group
from bandit.errors import InvalidInputError
from bandit.rewards import OutcomeStatus

if TYPE_CHECKING:
    import pandas as pd

    from bandit.catalog import Catalog
    from bandit.records import DecisionRecord
    from bandit.types import Action
    from service.store.base import DecisionStore

SUFFIXES = (".parquet", ".csv")
_WEEK = 7 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class ExportResult:
    """Files written and their row counts."""

    log_file: Path
    log_rows: int
    rct_file: Path
    rct_rows: int
    fairness_file: Path | None
    shadow_file: Path | None = None
    shadow_rows: int = 0
    shadow_target_file: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "log_file": str(self.log_file),
            "log_rows": self.log_rows,
            "rct_file": str(self.rct_file),
            "rct_rows": self.rct_rows,
            "fairness_file": None if self.fairness_file is None else str(self.fairness_file),
            "shadow_file": None if self.shadow_file is None else str(self.shadow_file),
            "shadow_rows": self.shadow_rows,
            "shadow_target_file": (
                None if self.shadow_target_file is None else str(self.shadow_target_file)
            ),
        }


def sibling(out: Path, kind: str) -> Path:
    """``<stem>.<kind><suffix>`` beside ``out``.

    Examples
    --------
    >>> sibling(Path("x/decisions.parquet"), "rct").as_posix()
    'x/decisions.rct.parquet'
    """
    return out.with_name(f"{out.stem}.{kind}{out.suffix}")


def _day(record: DecisionRecord) -> date:
    return datetime.fromtimestamp(record.timestamp, tz=UTC).date()


def in_window(
    records: Iterable[DecisionRecord], since: date | None, until: date | None
) -> Iterator[DecisionRecord]:
    """Records decided on ``since`` .. ``until`` (UTC days, both inclusive)."""
    for record in records:
        day = _day(record)
        if (since is None or day >= since) and (until is None or day <= until):
            yield record


def _known(record: DecisionRecord) -> bool:
    return record.outcome is not None and not record.censored and record.reward is not None


def _employed(record: DecisionRecord) -> int:
    return int(_known(record) and (record.reward or 0.0) > 0)


def age_band(age: object) -> str | None:
    """Coarse age band for the fairness audit.

    Examples
    --------
    >>> age_band(24), age_band(35), age_band(57), age_band(None)
    ('<30', '30-49', '50+', None)
    """
    if not isinstance(age, int | float) or isinstance(age, bool):
        return None
    return "<30" if age < 30 else "30-49" if age < 50 else "50+"  # noqa: PLR2004


def trial_row(record: DecisionRecord, horizon_weeks: float, now: float) -> dict[str, Any]:
    """One trial-file row (``offline_eval/trial_data.py`` convention)."""
    outcome = record.outcome
    weeks_to_job = None
    if outcome is not None and outcome.status is OutcomeStatus.EMPLOYED:
        weeks_to_job = outcome.weeks_to_job
    if _known(record):
        follow_up = float(horizon_weeks)
    elif outcome is not None and outcome.weeks_observed is not None:
        follow_up = min(float(outcome.weeks_observed), float(horizon_weeks))
    else:  # still open: followed from the decision until now
        follow_up = min(max(0.0, (now - record.timestamp) / _WEEK), float(horizon_weeks))
    return {
        "group": record.group.value,
        "employed": _employed(record),
        "complied": int(record.complied is True),
        "weeks_to_job": weeks_to_job,
        "follow_up_weeks": follow_up,
        "censored": int(not _known(record)),
    }


def _scalar_context(record: DecisionRecord) -> dict[str, Any]:
    return {
        k: v for k, v in record.context.items() if isinstance(v, str | int | float | bool | None)
    }


def log_row(record: DecisionRecord, action_ids: list[str]) -> dict[str, Any] | None:
    """One logged-bandit row, or ``None`` when the record is not a live, settled
    recommender-arm decision with a pmf."""
    if (
        record.group is not Group.TREATMENT
        or record.recommended is None
        or record.propensity is None
        or not record.pmf
        or getattr(record, "mode", "live") != "live"
        or not _known(record)
        or record.recommended not in action_ids
    ):
        return None
    pmf = dict.fromkeys(action_ids, 0.0)
    for action, p in zip(record.eligible, record.pmf, strict=True):
        if action in pmf:
            pmf[action] = float(p)
    row: dict[str, Any] = {
        "action": action_ids.index(record.recommended),
        "reward": float(record.reward or 0.0),
        "propensity": float(record.propensity),
        "timestamp": record.timestamp,
    }
    row.update({f"pmf_{k}": pmf[a] for k, a in enumerate(action_ids)})
    row.update(_scalar_context(record))
    return row


def shadow_row(
    record: DecisionRecord, action_ids: list[str], actions: Mapping[str, Action]
) -> tuple[dict[str, Any], list[float]] | None:
    """One shadow-log row and the policy's pmf over ``action_ids`` (the target), or ``None``
    when the record is not a settled shadow decision with a pmf and a known assignment.

    The logging policy of a shadow decision is the caseworker: the row's ``action`` is the
    assignment, ``propensity`` and ``pmf_<k>`` come from practice as usual evaluated on the
    record's context and eligible offers (the policy's own pmf is not a propensity of the
    caseworker's choice). An assignment outside the eligible offers has no propensity under
    that model and is left out.
    """
    from bandit.policies.practice import PracticeAsUsualPolicy

    if (
        record.group is not Group.TREATMENT
        or getattr(record, "mode", "live") != "shadow"
        or not record.pmf
        or record.assigned is None
        or record.assigned not in record.eligible
        or not _known(record)
        or any(a not in actions for a in record.eligible)
    ):
        return None
    practice = PracticeAsUsualPolicy(floor=0.0)
    logger = practice.probabilities(dict(record.context), [actions[a] for a in record.eligible])
    index = {a: k for k, a in enumerate(action_ids)}
    logger_pmf = [0.0] * len(action_ids)
    target = [0.0] * len(action_ids)
    for action, p_logger, p_policy in zip(record.eligible, logger, record.pmf, strict=True):
        logger_pmf[index[action]] = float(p_logger)
        target[index[action]] = float(p_policy)
    row: dict[str, Any] = {
        "action": index[record.assigned],
        "reward": float(record.reward or 0.0),
        "propensity": logger_pmf[index[record.assigned]],
        "timestamp": record.timestamp,
    }
    row.update({f"pmf_{k}": p for k, p in enumerate(logger_pmf)})
    row.update(_scalar_context(record))
    return row, target


def _write(frame: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


def export_records(  # noqa: PLR0913 (what, when, where, who)
    store: DecisionStore,
    catalog: Catalog,
    out: Path,
    *,
    horizon_weeks: float,
    since: date | None = None,
    until: date | None = None,
    protected: bool = False,
    include_open: bool = False,
    now: float | None = None,
) -> ExportResult:
    """Write the logged-bandit, trial, shadow and (with ``protected``) fairness files."""
    import numpy as np
    import pandas as pd

    if out.suffix.lower() not in SUFFIXES:
        msg = f"--out must end in .parquet or .csv, got {out.name!r}"
        raise InvalidInputError(msg)
    if since is not None and until is not None and since > until:
        msg = "--since must not be after --until"
        raise InvalidInputError(msg)
    moment = time.time() if now is None else now
    items = list(catalog)
    action_ids = [item.id for item in items]
    families = {item.id: item.family.value for item in items}
    actions = {item.id: item.as_action() for item in items}
    log_rows: list[dict[str, Any]] = []
    shadow_rows: list[dict[str, Any]] = []
    shadow_target: list[list[float]] = []
    trial_rows: list[dict[str, Any]] = []
    fair_rows: list[dict[str, Any]] = []
    for record in in_window(store.iter_records(), since, until):
        row = log_row(record, action_ids)
        if row is not None:
            log_rows.append(row)
        shadow = shadow_row(record, action_ids, actions)
        if shadow is not None:
            shadow_rows.append(shadow[0])
            shadow_target.append(shadow[1])
        if not include_open and not _known(record):
            continue
        trial = trial_row(record, horizon_weeks, moment)
        trial_rows.append(trial)
        if protected:
            attrs = store.get_protected(record.event_id)
            fair_rows.append(
                {
                    **trial,
                    "gender": None if attrs is None or attrs.gender is None else attrs.gender.value,
                    "origin": None if attrs is None or attrs.origin is None else attrs.origin.value,
                    "age_band": age_band(record.context.get("age")),
                    "recommended_family": families.get(record.recommended or ""),
                    "followed": record.complied,
                }
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    log_columns = ["action", "reward", "propensity", "timestamp"] + [
        f"pmf_{k}" for k in range(len(action_ids))
    ]
    _write(pd.DataFrame(log_rows, columns=None if log_rows else log_columns), out)
    shadow_file = sibling(out, "shadow")
    _write(pd.DataFrame(shadow_rows, columns=None if shadow_rows else log_columns), shadow_file)
    shadow_target_file = out.with_name(f"{out.stem}.shadow.target.npy")
    np.save(
        shadow_target_file,
        np.asarray(shadow_target, dtype=float).reshape(len(shadow_rows), len(action_ids)),
    )
    out.with_suffix("").with_suffix(".meta.json").write_text(
        json.dumps(
            {"action_ids": action_ids, "action_families": [families[a] for a in action_ids]},
            indent=2,
        )
    )
    rct = sibling(out, "rct")
    trial_columns = ["group", "employed", "complied", "weeks_to_job", "follow_up_weeks", "censored"]
    _write(pd.DataFrame(trial_rows, columns=trial_columns), rct)
    fairness = None
    if protected:
        fairness = sibling(out, "fairness")
        _write(pd.DataFrame(fair_rows), fairness)
    return ExportResult(
        out,
        len(log_rows),
        rct,
        len(trial_rows),
        fairness,
        shadow_file=shadow_file,
        shadow_rows=len(shadow_rows),
        shadow_target_file=shadow_target_file,
    )


def parse_day(text: str | None, option: str) -> date | None:
    """A ``YYYY-MM-DD`` option value, or ``None``."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        msg = f"{option} must be a date YYYY-MM-DD"
        raise InvalidInputError(msg) from None

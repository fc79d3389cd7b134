"""Fairness audit by protected group (domain.md section 4).

Input: one row per citizen (or decision) with the RCT arm, the outcome, the protected
attributes and, for the treatment arm, the recommended family, whether the caseworker followed it
and which families were eligible. For each protected attribute and level it reports:
recommendation rates per family (raw, and among citizens for whom the family was eligible),
override rate, employment rate, the treatment-vs-control effect with CI, and a one-sided
"do no harm" test (H1: effect < -margin) with Holm adjustment across the groups that could be
tested.

The outcome must be 0/1 (employment within the horizon): the rates are employment shares and the
margin is a share, so ``0 <= margin < 1`` (0.02 = 2 percentage points) and ``0 < alpha < 1``.
The file needs at least 2 citizens in each arm, as ``nbi experiment`` does. A group with fewer
than 2 citizens in an arm, or no variation in the outcome (standard error 0), is not tested: its
``p_harm`` is NaN and it does not count in Holm's number of tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bandit.context import age_band
from offline_eval.errors import ExperimentDataError
from offline_eval.stats import holm, lower_p, neyman_difference
from offline_eval.trial_data import arms, is_binary, numeric_column

DEFAULT_ATTRIBUTES = ("gender", "origin", "age_band")


@dataclass(frozen=True)
class AuditColumns:
    """Column names of the audit file."""

    group: str = "group"
    outcome: str = "employed"
    treatment_label: str = "treatment"
    control_label: str = "control"
    recommended_family: str = "recommended_family"
    complied: str = "complied"
    eligible_families: str = "eligible_families"


@dataclass(frozen=True)
class FairnessReport:
    """Per-group outcome table and per-group recommendation-rate table."""

    groups: pd.DataFrame
    recommendation_rates: pd.DataFrame
    alpha: float
    margin: float

    @property
    def flagged(self) -> list[str]:
        """``"attribute=level"`` of every group flagged as harmed."""
        if "harm_flag" not in self.groups.columns:  # no protected-attribute column in the file
            return []
        rows = self.groups[self.groups["harm_flag"]]
        return [f"{a}={v}" for a, v in zip(rows["attribute"], rows["level"], strict=True)]

    @property
    def n_tested(self) -> int:
        """Number of groups with a do-no-harm p-value (Holm's number of tests)."""
        if "p_harm" not in self.groups.columns:
            return 0
        return int(np.isfinite(self.groups["p_harm"].to_numpy(dtype=float)).sum())

    @property
    def untested(self) -> list[str]:
        """``"attribute=level"`` of every group that could not be tested (no p-value)."""
        if "p_harm" not in self.groups.columns:
            return []
        rows = self.groups[~np.isfinite(self.groups["p_harm"].to_numpy(dtype=float))]
        return [f"{a}={v}" for a, v in zip(rows["attribute"], rows["level"], strict=True)]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict (NaN as ``None``)."""
        clean = self.groups.astype(object).where(self.groups.notna(), None)
        rates = self.recommendation_rates.astype(object).where(
            self.recommendation_rates.notna(), None
        )
        return {
            "alpha": self.alpha,
            "margin": self.margin,
            "multiple_testing": "holm",
            "groups_tested": self.n_tested,
            "untested": self.untested,
            "flagged": self.flagged,
            "groups": clean.to_dict(orient="records"),
            "recommendation_rates": rates.to_dict(orient="records"),
        }


def audit(
    frame: pd.DataFrame,
    *,
    attributes: Sequence[str] = DEFAULT_ATTRIBUTES,
    columns: AuditColumns | None = None,
    alpha: float = 0.05,
    margin: float = 0.0,
) -> FairnessReport:
    """Run the fairness audit; see the module docstring.

    Examples
    --------
    >>> df = pd.DataFrame({"group": ["treatment", "control"] * 4, "employed": [1, 0] * 4,
    ...                    "gender": ["female"] * 4 + ["male"] * 4})
    >>> report = audit(df, attributes=["gender"])
    >>> report.groups[["level", "employment_treatment", "effect"]].values.tolist()
    [['female', 1.0, 1.0], ['male', 1.0, 1.0]]
    """
    check_alpha_margin(alpha, margin)
    cols = columns or AuditColumns()
    frame = _prepare(frame, attributes, cols)
    treated = frame[cols.group] == cols.treatment_label
    rows: list[dict[str, object]] = []
    rate_rows: list[dict[str, object]] = []
    for attr in attributes:
        for level, part in frame.groupby(attr, dropna=False, sort=True):
            t = treated.loc[part.index]
            rows.append(_group_row(attr, str(level), part, t, cols, margin, alpha))
            rate_rows.extend(_rate_rows(attr, str(level), part[t], cols))
    groups = pd.DataFrame(rows)
    if not groups.empty:
        groups["p_harm_holm"] = holm(groups["p_harm"].tolist())
        groups["harm_flag"] = groups["p_harm_holm"] < alpha
    return FairnessReport(groups, pd.DataFrame(rate_rows), alpha, margin)


def check_alpha_margin(
    alpha: float, margin: float, *, alpha_name: str = "alpha", margin_name: str = "margin"
) -> None:
    """Raise :class:`ValueError` unless ``0 < alpha < 1`` and ``0 <= margin < 1`` (finite).

    Examples
    --------
    >>> check_alpha_margin(0.05, 0.02)
    >>> check_alpha_margin(1.5, 0.0, alpha_name="--alpha")
    Traceback (most recent call last):
    ...
    ValueError: --alpha must be in (0, 1), got 1.5
    """
    if not (math.isfinite(alpha) and 0.0 < alpha < 1.0):
        msg = f"{alpha_name} must be in (0, 1), got {alpha:g}"
        raise ValueError(msg)
    if not (math.isfinite(margin) and 0.0 <= margin < 1.0):
        msg = (
            f"{margin_name} must be in [0, 1) (a share of the 0/1 outcome: 0.02 = 2 pp), "
            f"got {margin:g}"
        )
        raise ValueError(msg)


def _prepare(frame: pd.DataFrame, attributes: Sequence[str], cols: AuditColumns) -> pd.DataFrame:
    frame = frame.copy()
    if "age_band" in attributes and "age_band" not in frame.columns and "age" in frame.columns:
        frame["age_band"] = [age_band(int(a)) for a in frame["age"]]
    missing = [c for c in (cols.group, cols.outcome, *attributes) if c not in frame.columns]
    if missing:
        msg = f"Missing column(s) for the fairness audit: {', '.join(missing)}"
        raise ExperimentDataError(msg)
    # Unknown labels and fewer than 2 citizens in an arm are refused as by nbi experiment.
    arms(frame, cols.group, cols.treatment_label, cols.control_label)
    frame[cols.group] = frame[cols.group].astype(str)
    y = numeric_column(frame, cols.outcome, what="the outcome")
    if not is_binary(y):
        msg = (
            f"Column {cols.outcome!r} must be 0/1 with no missing values (the audit compares "
            f"employment shares), found {_first(frame[cols.outcome], ~np.isin(y, (0.0, 1.0)))}"
        )
        raise ExperimentDataError(msg)
    frame[cols.outcome] = y
    if cols.complied in frame.columns:
        followed = numeric_column(frame, cols.complied, what="received treatment")
        odd = np.isfinite(followed) & ~np.isin(followed, (0.0, 1.0))
        if odd.any():
            example = _first(frame[cols.complied], odd)
            msg = f"Column {cols.complied!r} must be 0/1 (or empty), found {example}"
            raise ExperimentDataError(msg)
        frame[cols.complied] = followed
    return frame


def _first(column: pd.Series, mask: np.ndarray) -> str:
    """The first value of ``column`` where ``mask`` holds, as the user wrote it."""
    value = column[mask].iloc[0]
    return repr(value.item() if isinstance(value, np.generic) else value)


def _group_row(
    attr: str,
    level: str,
    part: pd.DataFrame,
    treated: pd.Series,
    cols: AuditColumns,
    margin: float,
    alpha: float,
) -> dict[str, object]:
    y = part[cols.outcome].to_numpy(dtype=float)
    t = treated.to_numpy(dtype=bool)
    effect = neyman_difference(y[t], y[~t], alpha)
    z = (effect.estimate + margin) / effect.se if effect.se > 0 else math.nan
    override = math.nan
    if cols.complied in part.columns and t.any():
        followed = part.loc[t, cols.complied].dropna()
        override = float(1.0 - followed.mean()) if len(followed) else math.nan
    return {
        "attribute": attr,
        "level": level,
        "n": len(part),
        "n_treatment": int(t.sum()),
        "n_control": int((~t).sum()),
        "employment_rate": float(y.mean()),
        "employment_treatment": float(y[t].mean()) if t.any() else math.nan,
        "employment_control": float(y[~t].mean()) if (~t).any() else math.nan,
        "effect": effect.estimate,
        "effect_ci_low": effect.ci_low,
        "effect_ci_high": effect.ci_high,
        "override_rate": override,
        "p_harm": lower_p(z),
    }


def _rate_rows(
    attr: str, level: str, treated_part: pd.DataFrame, cols: AuditColumns
) -> list[dict[str, object]]:
    if cols.recommended_family not in treated_part.columns or treated_part.empty:
        return []
    # pandas 3 keeps a missing value as NaN through astype(str): blank it first.
    recommended = treated_part[cols.recommended_family].astype(object).fillna("").astype(str)
    eligible = None
    if cols.eligible_families in treated_part.columns:
        eligible = (
            treated_part[cols.eligible_families]
            .astype(object)
            .fillna("")
            .astype(str)
            .str.split(";")
        )
    out: list[dict[str, object]] = []
    for family in sorted(set(recommended) - {"nan", "None", ""}):
        is_rec = (recommended == family).to_numpy()
        among = math.nan
        if eligible is not None:
            mask = np.array([family in fams for fams in eligible])
            among = float(is_rec[mask].mean()) if mask.any() else math.nan
        out.append(
            {
                "attribute": attr,
                "level": level,
                "family": family,
                "rate": float(is_rec.mean()),
                "rate_among_eligible": among,
            }
        )
    return out

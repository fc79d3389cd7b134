"""The full RCT analysis of one experiment file (one row per citizen), as one result object."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from offline_eval.errors import ExperimentDataError
from offline_eval.rct import (
    Compliance,
    SampleRatioCheck,
    itt,
    lin_adjusted,
    mde,
    sample_ratio_check,
    wald_iv,
)
from offline_eval.stats import Effect
from offline_eval.survival import KaplanMeier, LogRank, kaplan_meier, log_rank


@dataclass(frozen=True)
class ExperimentSpec:
    """Column names and design parameters of the RCT file."""

    group_col: str = "group"
    outcome_col: str = "employed"
    treatment_label: str = "treatment"
    control_label: str = "control"
    control_share: float = 0.2
    covariates: tuple[str, ...] = ()
    complied_col: str = "complied"
    time_col: str = "weeks_to_job"
    horizon: float = 26.0
    alpha: float = 0.05


@dataclass(frozen=True)
class ExperimentResult:
    """Everything ``nbi experiment`` reports."""

    n_treatment: int
    n_control: int
    employment_treatment: float
    employment_control: float
    itt: Effect
    lin: Effect | None
    compliance: Compliance | None
    srm: SampleRatioCheck
    mde: float
    km: dict[str, KaplanMeier] = field(default_factory=dict)
    logrank: LogRank | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict (NaN as ``None``)."""
        out: dict[str, object] = {
            "n_treatment": self.n_treatment,
            "n_control": self.n_control,
            "employment_treatment": self.employment_treatment,
            "employment_control": self.employment_control,
            "itt": self.itt.to_dict(),
            "lin_adjusted": None if self.lin is None else self.lin.to_dict(),
            "compliance": None if self.compliance is None else self.compliance.to_dict(),
            "sample_ratio": self.srm.to_dict(),
            "mde": self.mde,
            "logrank": None
            if self.logrank is None
            else {"chi2": self.logrank.chi2, "p_value": self.logrank.p_value},
            "km_median_weeks": {k: _median(v) for k, v in self.km.items()},
        }
        clean = _nan_to_none(out)
        assert isinstance(clean, dict)  # noqa: S101
        return clean


def _median(km: KaplanMeier) -> float | None:
    below = np.flatnonzero(km.survival <= 0.5)  # noqa: PLR2004
    return float(km.times[below[0]]) if below.size else None


def _nan_to_none(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value


def analyse(frame: pd.DataFrame, spec: ExperimentSpec | None = None) -> ExperimentResult:
    """Analyse an RCT file; raise :class:`ExperimentDataError` on bad input.

    Examples
    --------
    >>> df = pd.DataFrame({"group": ["treatment"] * 8 + ["control"] * 2,
    ...                    "employed": [1, 1, 1, 0, 1, 0, 1, 1, 0, 1]})
    >>> r = analyse(df)
    >>> r.n_treatment, r.n_control, r.itt.estimate
    (8, 2, 0.25)
    """
    spec = spec or ExperimentSpec()
    treated, y = _arms(frame, spec)
    n_t, n_c = int(treated.sum()), int((~treated).sum())
    lin = None
    if spec.covariates:
        x = _covariates(frame, spec.covariates)
        lin = lin_adjusted(y, treated, x, alpha=spec.alpha)
    compliance = None
    if spec.complied_col in frame.columns:
        d = pd.to_numeric(frame[spec.complied_col], errors="coerce").fillna(0).to_numpy()
        d = np.where(treated, d, 0.0)
        compliance = wald_iv(y, treated, d, spec.alpha)
    km: dict[str, KaplanMeier] = {}
    lr = None
    if spec.time_col in frame.columns:
        weeks = pd.to_numeric(frame[spec.time_col], errors="coerce").to_numpy(dtype=float)
        event = np.isfinite(weeks) & (weeks <= spec.horizon)
        duration = np.where(event, weeks, spec.horizon)
        km = {
            spec.treatment_label: kaplan_meier(duration[treated], event[treated]),
            spec.control_label: kaplan_meier(duration[~treated], event[~treated]),
        }
        lr = log_rank(duration, event, treated)
    p = float(y.mean())
    return ExperimentResult(
        n_treatment=n_t,
        n_control=n_c,
        employment_treatment=float(y[treated].mean()),
        employment_control=float(y[~treated].mean()),
        itt=itt(y, treated, spec.alpha),
        lin=lin,
        compliance=compliance,
        srm=sample_ratio_check(n_c, n_t + n_c, spec.control_share),
        mde=mde(p, n_t, n_c, alpha=spec.alpha),
        km=km,
        logrank=lr,
    )


def _arms(frame: pd.DataFrame, spec: ExperimentSpec) -> tuple[np.ndarray, np.ndarray]:
    missing = [c for c in (spec.group_col, spec.outcome_col) if c not in frame.columns]
    if missing:
        have = ", ".join(map(str, frame.columns))
        msg = f"Missing column(s) {', '.join(missing)} in the RCT file (have: {have})"
        raise ExperimentDataError(msg)
    labels = frame[spec.group_col].astype(str)
    unknown = sorted(set(labels) - {spec.treatment_label, spec.control_label})
    if unknown:
        msg = f"Unknown group label(s) {unknown} in column {spec.group_col!r} (expected {spec.treatment_label!r} or {spec.control_label!r})"
        raise ExperimentDataError(msg)
    treated = (labels == spec.treatment_label).to_numpy()
    if treated.sum() < 2 or (~treated).sum() < 2:  # noqa: PLR2004
        msg = "Need at least 2 citizens in each group"
        raise ExperimentDataError(msg)
    y = pd.to_numeric(frame[spec.outcome_col], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(y).all():
        msg = f"Column {spec.outcome_col!r} must be numeric with no missing values"
        raise ExperimentDataError(msg)
    return treated, y


def _covariates(frame: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
    missing = [c for c in names if c not in frame.columns]
    if missing:
        msg = f"Missing covariate column(s): {', '.join(missing)}"
        raise ExperimentDataError(msg)
    x = pd.get_dummies(frame[list(names)], drop_first=True, dtype=float).to_numpy(dtype=float)
    if not np.isfinite(x).all():
        msg = "Covariates must have no missing values"
        raise ExperimentDataError(msg)
    return x

"""The full RCT analysis of one experiment file (one row per citizen), as one result object.

Column names follow :mod:`offline_eval.trial_data`; every column is configurable through
:class:`ExperimentSpec` (``nbi experiment --outcome-col/--received-col/--time-col/...``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from offline_eval import trial_data
from offline_eval.cluster import ClusterAnalysis, cluster_analysis, cluster_fit
from offline_eval.errors import ExperimentDataError
from offline_eval.iv import Compliance
from offline_eval.rct import (
    SampleRatioCheck,
    itt,
    lin_adjusted,
    mde,
    mde_continuous,
    pooled_sd,
    sample_ratio_check,
    wald_iv,
)
from offline_eval.stats import Effect
from offline_eval.survival import KaplanMeier, LogRank, kaplan_meier, log_rank
from offline_eval.trial_data import SurvivalColumns, TimeToEvent

HC_TYPES = ("HC2", "HC3")


@dataclass(frozen=True)
class ExperimentSpec:
    """Column names and design parameters of the RCT file.

    ``received_col``, ``time_col`` and ``follow_up_col`` default to ``complied``,
    ``weeks_to_job`` and ``follow_up_weeks`` when those columns are present; a column named
    here must exist. ``horizon`` is the follow-up of the time-to-event analysis in weeks.
    """

    group_col: str = "group"
    outcome_col: str = "employed"
    treatment_label: str = "treatment"
    control_label: str = "control"
    control_share: float = 0.2
    covariates: tuple[str, ...] = ()
    received_col: str | None = None
    time_col: str | None = None
    event_col: str | None = None
    follow_up_col: str | None = None
    horizon: float = 26.0
    hc: Literal["HC2", "HC3"] = "HC2"
    alpha: float = 0.05
    cluster_col: str | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.horizon, int | float) and 0 < self.horizon < math.inf):
            msg = f"The horizon must be a number of weeks > 0, got {self.horizon}"
            raise ExperimentDataError(msg)
        if self.hc not in HC_TYPES:
            msg = f"Unknown variance type {self.hc!r} (expected one of {', '.join(HC_TYPES)})"
            raise ExperimentDataError(msg)
        if not 0.0 < self.alpha < 1.0:
            msg = f"Expected 0 < alpha < 1, got {self.alpha}"
            raise ExperimentDataError(msg)
        if not 0.0 < self.control_share < 1.0:
            msg = (
                "The configured control share (--control-share) must be strictly between 0 "
                f"and 1, got {self.control_share}"
            )
            raise ExperimentDataError(msg)
        if self.treatment_label == self.control_label:
            msg = f"The treatment and control labels are the same ({self.treatment_label!r})"
            raise ExperimentDataError(msg)

    @property
    def survival_columns(self) -> SurvivalColumns:
        """The time-to-event column names."""
        return SurvivalColumns(self.time_col, self.event_col, self.follow_up_col)


@dataclass(frozen=True)
class Survival:
    """Kaplan-Meier curve per arm and the log-rank test, with the columns they came from."""

    data: TimeToEvent
    km: dict[str, KaplanMeier]
    logrank: LogRank

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {
            "time_col": self.data.time_col,
            "event_col": self.data.event_col,
            "follow_up_col": self.data.follow_up_col,
            "horizon": self.data.horizon,
            "km": {arm: km.to_dict() for arm, km in self.km.items()},
            "logrank": {
                "chi2": self.logrank.chi2,
                "p_value": self.logrank.p_value,
                "observed_minus_expected": self.logrank.observed_minus_expected,
            },
        }


@dataclass(frozen=True)
class ExperimentResult:
    """Everything ``nbi experiment`` reports.

    ``employment_treatment`` / ``employment_control`` are the arm means of the outcome (the
    employment rates for the default 0/1 outcome). ``mde`` is in the outcome's units: at the
    control-arm rate for a 0/1 outcome, with the pooled SD for a continuous one. ``warnings``
    are data problems that do not stop the analysis (a known post-treatment covariate, rows
    whose outcome contradicts their time to event); ``nbi experiment`` prints each on stderr.
    """

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
    outcome_col: str = "employed"
    outcome_type: Literal["binary", "continuous"] = "binary"
    outcome_sd: float = math.nan
    hc: str = "HC2"
    received_col: str | None = None
    received_missing: int = 0
    survival: Survival | None = None
    cluster: ClusterAnalysis | None = None
    cluster_col: str | None = None
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict (NaN as ``None``)."""
        out: dict[str, object] = {
            "n_treatment": self.n_treatment,
            "n_control": self.n_control,
            "outcome": {
                "column": self.outcome_col,
                "type": self.outcome_type,
                "mean_treatment": self.employment_treatment,
                "mean_control": self.employment_control,
                "sd_pooled": self.outcome_sd,
            },
            "employment_treatment": self.employment_treatment,
            "employment_control": self.employment_control,
            "itt": self.itt.to_dict(),
            "lin_adjusted": None if self.lin is None else {**self.lin.to_dict(), "hc": self.hc},
            "compliance": self._compliance_dict(),
            "sample_ratio": self.srm.to_dict(),
            "mde": self.mde,
            "mde_basis": "control-arm rate" if self.outcome_type == "binary" else "pooled SD",
            "survival": None if self.survival is None else self.survival.to_dict(),
            "logrank": None
            if self.logrank is None
            else {"chi2": self.logrank.chi2, "p_value": self.logrank.p_value},
            "km_median_weeks": {k: v.median() for k, v in self.km.items()},
            "cluster": None
            if self.cluster is None
            else {"column": self.cluster_col, **self.cluster.to_dict()},
            "warnings": list(self.warnings),
        }
        clean = _nan_to_none(out)
        assert isinstance(clean, dict)  # noqa: S101
        return clean

    def _compliance_dict(self) -> dict[str, object] | None:
        if self.compliance is None:
            return None
        return {
            "received_col": self.received_col,
            "missing_counted_as_not_received": self.received_missing,
            **self.compliance.to_dict(),
        }


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
    treated = trial_data.arms(frame, spec.group_col, spec.treatment_label, spec.control_label)
    y = trial_data.outcome(frame, spec.outcome_col)
    n_t, n_c = int(treated.sum()), int((~treated).sum())
    notes: list[str] = []
    clusters = None if spec.cluster_col is None else _cluster_ids(frame, spec.cluster_col, treated)
    lin = None
    x = None
    if spec.covariates:
        x = _covariate_matrix(frame, spec, treated, notes)
        lin = lin_adjusted(y, treated, x, alpha=spec.alpha, hc=spec.hc)
    rec = trial_data.received(frame, spec.received_col)
    compliance = None if rec is None else wald_iv(y, treated, rec.values, spec.alpha)
    survival = _survival(frame, spec, treated)
    binary = trial_data.is_binary(y)
    if survival is not None and binary:
        notes += _conflicts(frame, y, spec, survival.data)
    sd = pooled_sd(y, treated)
    p_c = float(y[~treated].mean())
    effect = itt(y, treated, spec.alpha)
    minimum = (
        mde(p_c, n_t, n_c, alpha=spec.alpha)
        if binary
        else mde_continuous(sd, n_t, n_c, alpha=spec.alpha)
    )
    clustered = None
    srm = sample_ratio_check(n_c, n_t + n_c, spec.control_share)
    if clusters is not None:
        clustered = cluster_analysis(y, treated.astype(float), clusters, alpha=spec.alpha)
        effect, minimum = clustered.fit.effect, clustered.mde
        if x is not None:
            lin = cluster_fit(y, treated.astype(float), clusters, x, alpha=spec.alpha).effect
        fit = clustered.fit
        srm = sample_ratio_check(
            fit.n_clusters_control, fit.n_clusters, spec.control_share, unit="clusters"
        )
    return ExperimentResult(
        n_treatment=n_t,
        n_control=n_c,
        employment_treatment=float(y[treated].mean()),
        employment_control=p_c,
        itt=effect,
        lin=lin,
        compliance=compliance,
        srm=srm,
        mde=minimum,
        km={} if survival is None else survival.km,
        logrank=None if survival is None else survival.logrank,
        outcome_col=spec.outcome_col,
        outcome_type="binary" if binary else "continuous",
        outcome_sd=sd,
        hc=spec.hc,
        received_col=None if rec is None else rec.column,
        received_missing=0 if rec is None else rec.n_missing,
        survival=survival,
        cluster=clustered,
        cluster_col=spec.cluster_col,
        warnings=tuple(notes),
    )


def _cluster_ids(frame: pd.DataFrame, column: str, treated: np.ndarray) -> np.ndarray:
    """The cluster id per row; every cluster must be in one arm (cluster randomisation)."""
    if column not in frame.columns:
        have = ", ".join(map(str, frame.columns))
        msg = f"No cluster column {column!r} in the RCT file (have: {have})"
        raise ExperimentDataError(msg)
    ids = frame[column]
    if ids.isna().any():
        msg = f"Column {column!r} has {int(ids.isna().sum())} empty cluster id(s)"
        raise ExperimentDataError(msg)
    out = ids.astype(str).to_numpy()
    arms_per_cluster = pd.Series(treated).groupby(out).nunique()
    mixed = sorted(arms_per_cluster.index[arms_per_cluster > 1])
    if mixed:
        msg = (
            f"{len(mixed)} of {arms_per_cluster.shape[0]} clusters in column {column!r} hold "
            f"citizens of both arms ({trial_data.examples(mixed)}): with --cluster-col every "
            "cluster is randomised to one arm; check the column, or analyse per citizen "
            "without --cluster-col"
        )
        raise ExperimentDataError(msg)
    return out


def _covariate_matrix(
    frame: pd.DataFrame, spec: ExperimentSpec, treated: np.ndarray, notes: list[str]
) -> np.ndarray:
    """The covariates for Lin's adjustment, refusing any that cannot be pre-treatment.

    Refused: the arm, outcome, received, time and event columns, the simulator's hidden
    ``latent_type``, and covariates that determine the arm (constant within each arm, or
    together collinear with the treatment indicator: Lin's "effect" is then the covariate's).
    A known post-treatment column of the simulator's trial files adds a warning to ``notes``.
    """
    received = spec.received_col or (
        trial_data.DEFAULT_RECEIVED_COL
        if trial_data.DEFAULT_RECEIVED_COL in frame.columns
        else None
    )
    time = spec.time_col or (
        trial_data.DEFAULT_TIME_COL if trial_data.DEFAULT_TIME_COL in frame.columns else None
    )
    roles = {
        received: "the received treatment (--received-col), recorded after randomisation",
        time: "the time to event (--time-col), an outcome",
        spec.event_col: "the event flag (--event-col), an outcome",
        spec.outcome_col: "the outcome (--outcome-col)",
        spec.group_col: "the arm itself (--group-col)",
    }
    for name in spec.covariates:
        if name in roles:
            msg = f"--covariate {name!r} is {roles[name]}; a covariate must be pre-treatment"
            raise ExperimentDataError(msg)
        if name in trial_data.HIDDEN_COLUMNS:
            msg = (
                f"--covariate {name!r} is the simulator's hidden truth, which no real analysis "
                "can observe: never a covariate (use the case facts or a prognostic score)"
            )
            raise ExperimentDataError(msg)
    x = trial_data.covariates(frame, spec.covariates)
    for name in spec.covariates:
        column = frame[name]
        per_arm = [column[treated].nunique(dropna=False), column[~treated].nunique(dropna=False)]
        overall = column.nunique(dropna=False)
        if per_arm == [1, 1] and overall == 2:  # noqa: PLR2004
            msg = (
                f"--covariate {name!r} is constant within each arm, so it is collinear with "
                "the arm (Lin's effect would be the covariate's); a covariate must vary "
                "within the arms"
            )
            raise ExperimentDataError(msg)
    if _determines_arm(x, treated):
        alone = [
            n
            for n in spec.covariates
            if _determines_arm(trial_data.covariates(frame, [n]), treated)
        ]
        which = (
            f"--covariate {alone[0]!r} determines"
            if alone
            else f"The covariates {', '.join(repr(n) for n in spec.covariates)} together determine"
        )
        msg = (
            f"{which} the arm (its values are collinear with the treatment indicator, as a "
            "randomisation cluster's are), so Lin's effect is not identified; drop it"
        )
        raise ExperimentDataError(msg)
    notes += [
        f"--covariate {name!r} is recorded at or after the decision in the simulator's trial "
        "files (post-treatment): adjusting for it can bias the Lin ITT"
        for name in spec.covariates
        if name in trial_data.POST_TREATMENT_COLUMNS
    ]
    return x


def _determines_arm(x: np.ndarray, treated: np.ndarray) -> bool:
    """True when the treatment indicator is (numerically) a linear function of ``[1, x]``."""
    t = treated.astype(float)
    z = np.column_stack([np.ones_like(t), x])
    beta = np.linalg.lstsq(z, t, rcond=None)[0]
    resid = t - z @ beta
    spread = float(((t - t.mean()) ** 2).sum())
    return float(resid @ resid) <= 1e-9 * spread


def _conflicts(
    frame: pd.DataFrame, y: np.ndarray, spec: ExperimentSpec, data: TimeToEvent
) -> list[str]:
    n = trial_data.outcome_time_conflicts(frame, y, data)
    if n == 0:
        return []
    return [
        f"{n} row(s) have {spec.outcome_col}=0 but a job in {data.time_col!r} earlier than "
        f"one with {spec.outcome_col}=1: the outcome and the time to event contradict each "
        "other there (the ITT counts no job, the Kaplan-Meier curves a job); check the file"
    ]


def _survival(frame: pd.DataFrame, spec: ExperimentSpec, treated: np.ndarray) -> Survival | None:
    data = trial_data.time_to_event(frame, spec.survival_columns, spec.horizon)
    if data is None:
        return None
    d, e = data.duration, data.event
    km = {
        spec.treatment_label: kaplan_meier(d[treated], e[treated], alpha=spec.alpha),
        spec.control_label: kaplan_meier(d[~treated], e[~treated], alpha=spec.alpha),
    }
    return Survival(data, km, log_rank(d, e, treated))

"""Calibration parameters of the synthetic labour market (domain.md sections 5.1-5.3).

Every number here is a documented modelling choice; most are mid-points of the ranges in
``shared/domain.md``. All hazards are weekly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from bandit.catalog import Family
from bandit.context import TargetGroup
from bandit.errors import InvalidInputError

DAGPENGE_PER_YEAR = 36_000
KONTANTHJAELP_PER_YEAR = 5_000
WEEKS_PER_YEAR = 52
EXHAUSTION_WEEK = 104


@dataclass(frozen=True, slots=True)
class TypeMixture:
    """Unobserved types of one target group: shares and baseline weekly job hazards.

    Index 0 is the fast (high-employability) type and the last index the slow one; the
    heterogeneity rule of domain.md 5.2 uses these positions.
    """

    shares: tuple[float, ...]
    hazards: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.shares) != len(self.hazards) or not self.shares:
            msg = "Expected as many type shares as hazards"
            raise InvalidInputError(msg)
        if abs(sum(self.shares) - 1.0) > 1e-9 or min(self.shares) < 0:
            msg = f"Expected type shares that sum to 1, got {self.shares}"
            raise InvalidInputError(msg)
        if not all(0.0 < h < 1.0 for h in self.hazards):
            msg = f"Expected type hazards in (0, 1), got {self.hazards}"
            raise InvalidInputError(msg)


# domain.md 5.1; the kontanthjælp slow type is nudged to 0.006 as the table suggests.
DEFAULT_TYPES: Mapping[TargetGroup, TypeMixture] = MappingProxyType(
    {
        TargetGroup.DAGPENGE: TypeMixture((0.65, 0.25, 0.10), (0.22, 0.06, 0.015)),
        TargetGroup.KONTANTHJAELP: TypeMixture((0.25, 0.40, 0.35), (0.10, 0.03, 0.006)),
    }
)


@dataclass(frozen=True, slots=True)
class FamilyEffect:
    """True effect of one intervention family on the hazard of exit to ordinary employment.

    Parameters
    ----------
    during
        Hazard multiplier while in the programme (lock-in when < 1).
    after
        Multiplier after the programme, for ``after_weeks`` weeks (dagpenge).
    after_weeks
        How long the post-programme effect lasts.
    after_kontanthjaelp
        Post-programme multiplier for kontanthjælp recipients, when it differs.
    hire_probability
        Probability of being hired by the (subsidy) employer at the programme's end.
    """

    during: float = 1.0
    after: float = 1.0
    after_weeks: int = 0
    after_kontanthjaelp: float | None = None
    hire_probability: float = 0.0


# domain.md 5.2 mid-points. Public wage subsidy hire probability 0.1 is an assumption (the
# domain notes give a figure only for private subsidies).
DEFAULT_FAMILY_EFFECTS: Mapping[Family, FamilyEffect] = MappingProxyType(
    {
        Family.STANDARD_CONTACT: FamilyEffect(),
        Family.INDIVIDUAL_MEETINGS: FamilyEffect(1.25, 1.05, 13),
        Family.GROUP_MEETINGS: FamilyEffect(1.025, 1.0, 0),
        Family.JOB_SEARCH_COURSE: FamilyEffect(0.90, 1.10, 13),
        Family.PRIVATE_INTERNSHIP: FamilyEffect(1.02, 1.35, 26, 1.8),
        Family.PUBLIC_INTERNSHIP: FamilyEffect(0.85, 1.2, 26, 1.65),
        Family.PRIVATE_WAGE_SUBSIDY: FamilyEffect(0.6, 1.75, 52, None, 0.4),
        Family.PUBLIC_WAGE_SUBSIDY: FamilyEffect(0.5, 1.15, 26, None, 0.1),
        Family.SIX_WEEK_COURSE: FamilyEffect(0.65, 1.12, 52),
        Family.CLASSROOM_TRAINING: FamilyEffect(0.5, 1.12, 52),
        Family.MENTOR: FamilyEffect(1.0, 1.05, 26),
    }
)


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """Configuration of the population, the outcome model and the replay.

    Parameters
    ----------
    dagpenge_per_year, kontanthjaelp_per_year
        Spell inflow per year (Copenhagen 2018 by default).
    scale
        Multiplies both inflows (``0.05`` gives a fast test population).
    hazard_scale
        Calibration factor on the job hazard (dagpenge, kontanthjælp). The 5.1 mixture was
        calibrated without covariates, frailty and caseworker effects; their extra
        heterogeneity lengthens dagpenge spells, which this factor undoes (tuned with
        ``nbi simulate calibrate``).
    non_employment_hazard
        Weekly exit to non-employment (education, sickness, out of the labour force) of
        kontanthjælp recipients (domain.md 5.1: q = 0.008).
    non_employment_hazard_dagpenge
        The same exit for dagpenge recipients. Calibrated (``nbi simulate calibrate``) so that
        the 5.1 table's employment at week 26 (0.69) and its on-benefit moments hold together:
        with q = 0.008 the table's own mixture gives 0.80 employed at week 26 (docs/decisions.md).
    frailty_variance
        Variance of the gamma frailty (mean 1) inside each type.
    caseworker_sd, jobcentre_sd
        Log-normal sd of the caseworker and job-centre effects on the hazard.
    n_caseworkers, n_jobcentres
        Number of caseworkers and job centres.
    seasonal_amplitude
        Seasonal factor ``1 + a sin(2 pi week / 52)`` on the job hazard.
    business_cycle
        Global multiplier on the job hazard (0.8-1.2 by scenario).
    exhaustion_spike
        Hazard multiplier in weeks 95-104 of a dagpenge spell (1.0 = off).
    offer_effect_sd
        Log-scale sd of each offer's effect around its family.
    horizon_weeks
        Reward horizon H: employed within H weeks of the decision.
    lag_weeks
        Measurement lag before an outcome reaches the learner.
    settle_jobs_early
        True (the design's rule): a job found before the horizon settles the reward at once.
        False: every outcome becomes known at the horizon, so early positives cannot run
        ahead of the zeros (removes the delayed-feedback bias towards newly favoured arms).
    compliance
        Probability the caseworker follows the recommendation (treatment arm).
    control_share
        Share of citizens in the control arm.
    offers_per_family
        Size of the replay's action set: 0 (default) is the whole catalog in catalog order;
        n >= 1 the first n offers of each family (the fast family-level option).
    decision_weeks, decision_week_probs
        The spell week of the decision meeting and its distribution; citizens who leave
        before their meeting get no decision.
    capacity_scale
        Weekly seats of each action, shared by both arms: its catalog capacity x
        ``capacity_scale`` x ``scale`` (default 1: the catalog's seats at full scale). When
        ``offers_per_family`` selects a subset, the catalog capacity is multiplied by (offers of
        its family in the catalog / offers kept), so the arm stands for its whole family's
        seats. 0 ignores capacity. A full action is not eligible for the rest of the week.
    heterogeneity
        Strength of the observable effect heterogeneity (:mod:`simulator.heterogeneity`):
        1 (default) as documented there, 0 turns it off (effects then vary with the latent
        type only), values in between scale every modifier's deviation from 1.
    misclassification
        Probability that a logged week-H employment outcome is flipped (register lags).
    equity_reserve_share, equity_priority_share
        The scarce-seat reserve of :mod:`bandit.equity` (as ``NBI_EQUITY_RESERVE_SHARE`` and
        ``NBI_EQUITY_PRIORITY_SHARE``): the share of each scarce family's weekly seats held for
        the ``equity_priority_share`` of citizens in highest need (0: no reserve; 0.25 by
        default, as the service).
    """

    dagpenge_per_year: int = DAGPENGE_PER_YEAR
    kontanthjaelp_per_year: int = KONTANTHJAELP_PER_YEAR
    scale: float = 1.0
    types: Mapping[TargetGroup, TypeMixture] = field(default_factory=lambda: DEFAULT_TYPES)
    family_effects: Mapping[Family, FamilyEffect] = field(
        default_factory=lambda: DEFAULT_FAMILY_EFFECTS
    )
    hazard_scale: tuple[float, float] = (0.88, 1.0)
    non_employment_hazard: float = 0.008
    non_employment_hazard_dagpenge: float = 0.022
    separation_dagpenge: float = 0.01
    separation_kontanthjaelp: float = 0.015
    frailty_variance: float = 0.1
    caseworker_sd: float = 0.08
    jobcentre_sd: float = 0.05
    n_caseworkers: int = 200
    n_jobcentres: int = 4
    seasonal_amplitude: float = 0.1
    business_cycle: float = 1.0
    exhaustion_spike: float = 1.0
    offer_effect_sd: float = 0.10
    horizon_weeks: int = 26
    lag_weeks: int = 0
    settle_jobs_early: bool = True
    compliance: float = 0.6
    control_share: float = 0.2
    offers_per_family: int = 0
    decision_weeks: tuple[int, ...] = (0, 4, 13, 26)
    decision_week_probs: tuple[float, ...] = (0.55, 0.2, 0.15, 0.10)
    misclassification: float = 0.0
    capacity_scale: float = 1.0
    heterogeneity: float = 1.0
    equity_reserve_share: float = 0.25
    equity_priority_share: float = 0.25

    def __post_init__(self) -> None:
        checks = (
            (self.scale > 0, f"scale must be > 0, got {self.scale}"),
            (0 <= self.non_employment_hazard < 1, "non_employment_hazard must be in [0, 1)"),
            (
                0 <= self.non_employment_hazard_dagpenge < 1,
                "non_employment_hazard_dagpenge must be in [0, 1)",
            ),
            (self.frailty_variance >= 0, "frailty_variance must be >= 0"),
            (1 <= self.horizon_weeks <= EXHAUSTION_WEEK, "horizon_weeks must be in 1..104"),
            (self.lag_weeks >= 0, "lag_weeks must be >= 0"),
            (0 <= self.compliance <= 1, f"compliance must be in [0, 1], got {self.compliance}"),
            (0 <= self.control_share < 1, "control_share must be in [0, 1)"),
            (self.offers_per_family >= 0, "offers_per_family must be >= 0 (0: all)"),
            (0 <= self.misclassification < 0.5, "misclassification must be in [0, 0.5)"),
            (self.capacity_scale >= 0, "capacity_scale must be >= 0"),
            (self.heterogeneity >= 0, "heterogeneity must be >= 0"),
            (0 <= self.equity_reserve_share <= 1, "equity_reserve_share must be in [0, 1]"),
            (0 <= self.equity_priority_share <= 1, "equity_priority_share must be in [0, 1]"),
            (len(self.decision_weeks) == len(self.decision_week_probs), "decision weeks/probs"),
            (abs(sum(self.decision_week_probs) - 1) < 1e-9, "decision_week_probs must sum to 1"),
            (min(self.n_caseworkers, self.n_jobcentres) >= 1, "need >= 1 caseworker and centre"),
        )
        for ok, msg in checks:
            if not ok:
                raise InvalidInputError(f"Invalid simulation config: {msg}")

    def weekly_inflow(self, group: TargetGroup) -> float:
        """Expected number of new spells per week for ``group``."""
        per_year = (
            self.dagpenge_per_year if group is TargetGroup.DAGPENGE else self.kontanthjaelp_per_year
        )
        return per_year * self.scale / WEEKS_PER_YEAR

    def non_employment(self, group: np.ndarray) -> np.ndarray:
        """Weekly non-employment exit ``q`` of each citizen, shape ``(n,)``.

        ``group`` is the cohort's target-group index (0 dagpenge, 1 kontanthjælp).

        Examples
        --------
        >>> SimulationConfig(non_employment_hazard_dagpenge=0.03).non_employment(
        ...     np.array([0, 1])
        ... ).tolist()
        [0.03, 0.008]
        """
        q: np.ndarray = np.where(
            np.asarray(group) == 0, self.non_employment_hazard_dagpenge, self.non_employment_hazard
        )
        return q

    def separation(self, group: TargetGroup) -> float:
        """Weekly job-separation hazard after re-employment."""
        if group is TargetGroup.DAGPENGE:
            return self.separation_dagpenge
        return self.separation_kontanthjaelp

"""Weekly decision cohorts: who meets a caseworker this week, and their ground truth.

Spells start every week (Poisson inflow). Each spell has its decision meeting at spell week
``d`` (:attr:`SimulationConfig.decision_weeks`); it takes place only if the citizen is still on
benefit then, which is drawn from the citizen's exact no-intervention survival. The citizens
meeting a caseworker in calendar week ``w`` are therefore the survivors of the spells that
started in weeks ``w - d``; the survivors are selected on their latent type, as in reality.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bandit.catalog import Family, Intervention
from bandit.context import CitizenContext, TargetGroup
from bandit.eligibility import (
    _SKILLED_OR_UNSKILLED,
    _WAGE_SUBSIDY,
    SIX_WEEK_COURSE_YOUNG_AGE,
    SIX_WEEK_COURSE_YOUNG_MAX_WEEKS,
    WAGE_SUBSIDY_EXCEPTION_AGE,
)
from bandit.types import Action, FeatureValue
from simulator.config import SimulationConfig
from simulator.outcomes import (
    ArmEffects,
    citizen_log_effects,
    hazard_paths,
    observable_log_effects,
)
from simulator.population import EDUCATIONS, GROUPS, Cohort, PopulationModel, seasonal_factor
from simulator.truth import full_truth, observable_truth


def _concat(parts: list[Cohort]) -> Cohort:
    names = Cohort.__slots__
    return Cohort(**{k: np.concatenate([getattr(p, k) for p in parts]) for k in names})


def draw_decision_cohort(
    config: SimulationConfig, population: PopulationModel, week: int, rng: np.random.Generator
) -> Cohort:
    """Citizens whose decision meeting falls in calendar ``week``."""
    parts = []
    for d, share in zip(config.decision_weeks, config.decision_week_probs, strict=True):
        n_dp = int(rng.poisson(config.weekly_inflow(TargetGroup.DAGPENGE) * share))
        n_kh = int(rng.poisson(config.weekly_inflow(TargetGroup.KONTANTHJAELP) * share))
        cohort = population.draw(
            rng,
            n_dagpenge=n_dp,
            n_kontanthjaelp=n_kh,
            entry_week=week - d,
            decision_spell_week=d,
        )
        if d > 0 and len(cohort):
            calendar = (week - d) + np.arange(d)
            g = np.minimum(cohort.hazard[:, None] * seasonal_factor(config, calendar)[None], 1.0)
            q = config.non_employment(cohort.group)[:, None]
            survive = np.prod((1.0 - g) * (1.0 - q), axis=1)
            cohort = cohort.subset(rng.random(len(cohort)) < survive)
        parts.append(cohort)
    return _concat(parts)


def legal_eligibility(cohort: Cohort, arms: Sequence[Intervention]) -> np.ndarray:
    """Legal eligibility of every citizen for every action, shape ``(n, K)``, vectorised.

    Equals ``bandit.eligibility.exclusion_reason(arm, cohort.context(i)) is None`` (the
    decision spell week is the citizen's weeks unemployed), evaluated per offer with numpy.

    Examples
    --------
    >>> from bandit.catalog import default_catalog
    >>> cfg = SimulationConfig()
    >>> c = PopulationModel(cfg, seed=0).draw(np.random.default_rng(0), n_dagpenge=3,
    ...                                       n_kontanthjaelp=1)
    >>> legal_eligibility(c, tuple(default_catalog())).shape
    (4, 330)
    """
    groups = np.array([[g in arm.target_groups for g in GROUPS] for arm in arms], dtype=bool)
    min_age = np.array([arm.min_age for arm in arms])
    max_age = np.array([arm.max_age for arm in arms])
    min_weeks = np.array([arm.min_weeks_unemployed for arm in arms], dtype=float)
    max_weeks = np.array(
        [np.inf if arm.max_weeks_unemployed is None else arm.max_weeks_unemployed for arm in arms]
    )
    subsidy = np.array([arm.family in _WAGE_SUBSIDY for arm in arms], dtype=bool)
    six_week = np.array([arm.family is Family.SIX_WEEK_COURSE for arm in arms], dtype=bool)
    age = cohort.age[:, None]
    weeks = cohort.decision_spell_week[:, None]
    education = cohort.education[:, None]
    exception = (
        (education == 0) | (age >= WAGE_SUBSIDY_EXCEPTION_AGE) | cohort.single_parent[:, None]
    )
    earliest = np.where(subsidy[None, :] & exception, np.minimum(min_weeks, 0.0), min_weeks)
    skilled = np.isin(education, [EDUCATIONS.index(e) for e in _SKILLED_OR_UNSKILLED])
    young = age < SIX_WEEK_COURSE_YOUNG_AGE
    latest = np.where(
        six_week[None, :] & young,
        np.minimum(max_weeks, SIX_WEEK_COURSE_YOUNG_MAX_WEEKS),
        max_weeks,
    )
    ok: np.ndarray = (
        groups[:, cohort.group.astype(int)].T
        & (min_age <= age)
        & (age <= max_age)
        & (weeks >= earliest)
        & (~six_week[None, :] | skilled)
        & (weeks <= latest)
    )
    return ok


@dataclass(frozen=True, slots=True)
class PreparedCohort:
    """A decision cohort with model inputs, eligibility and exact ground truth.

    Attributes
    ----------
    cohort
        The citizens.
    contexts, features
        Validated model contexts and their feature mappings, one per citizen.
    eligible
        Legal eligibility mask, shape ``(n, K)`` (equal to
        :func:`bandit.eligibility.exclusion_reason` being ``None``). Writable: the replay may
        narrow it by capacity; keep a copy for :func:`simulator.reference.reference_choices`.
    p_job
        TRUE P(job within H) of every action given everything (latent type, frailty, origin,
        caseworker), shape ``(n, K)``.
    benefit_weeks
        TRUE expected weeks on benefit within H, shape ``(n, K)``.
    p_obs
        E[P(job within H) | what the service observes] (:func:`simulator.truth.observable_truth`),
        shape ``(n, K)``: the value of each action to the best feature-based policy.
    config, effects, week, log_effects
        What the hazard paths are built from (:meth:`paths`, :attr:`g`).
    """

    cohort: Cohort
    contexts: tuple[CitizenContext, ...]
    features: tuple[dict[str, FeatureValue], ...]
    eligible: np.ndarray
    p_job: np.ndarray
    benefit_weeks: np.ndarray
    p_obs: np.ndarray
    config: SimulationConfig
    effects: ArmEffects
    week: int
    log_effects: tuple[np.ndarray, np.ndarray]

    def eligible_actions(self, i: int, actions: tuple[Action, ...]) -> list[Action]:
        """The eligible actions of citizen ``i`` in action-set order."""
        return [a for a, ok in zip(actions, self.eligible[i], strict=True) if ok]

    def paths(self, actions: np.ndarray) -> np.ndarray:
        """Weekly job probabilities of one action per citizen, shape ``(n, H)``.

        ``actions[i]`` is citizen ``i``'s action index; use this to sample outcomes (it costs
        ``n x H``, not ``n x K x H``).
        """
        return hazard_paths(
            self.config,
            self.cohort,
            self.effects,
            decision_week=self.week,
            n_weeks=self.config.horizon_weeks,
            actions=np.asarray(actions, dtype=int),
            log_effects=self.log_effects,
        )

    @property
    def g(self) -> np.ndarray:
        """All weekly job probabilities, shape ``(n, K, H)`` (computed on access: slow)."""
        return hazard_paths(
            self.config,
            self.cohort,
            self.effects,
            decision_week=self.week,
            n_weeks=self.config.horizon_weeks,
            log_effects=self.log_effects,
        )


def prepare(
    config: SimulationConfig,
    cohort: Cohort,
    effects: ArmEffects,
    *,
    week: int,
    population: PopulationModel | None = None,
) -> PreparedCohort:
    """Contexts, eligibility and exact truth for a decision cohort in calendar ``week``.

    ``population`` (the model that drew the cohort) lets ``p_obs`` integrate the realised
    caseworker and job-centre effects; without it their log-normal law is used.
    """
    contexts = tuple(cohort.context(i) for i in range(len(cohort)))
    observable = observable_log_effects(config, cohort, effects)
    log_effects = citizen_log_effects(config, cohort, effects, observable=observable)
    p_job, benefit = full_truth(config, cohort, effects, log_effects, week=week)
    p_obs = observable_truth(
        config, cohort, effects, week=week, population=population, observable_effects=observable
    )
    return PreparedCohort(
        cohort=cohort,
        contexts=contexts,
        features=tuple(ctx.features() for ctx in contexts),
        eligible=legal_eligibility(cohort, effects.arms),
        p_job=p_job,
        benefit_weeks=benefit,
        p_obs=p_obs,
        config=config,
        effects=effects,
        week=week,
        log_effects=log_effects,
    )


def concat_cohorts(parts: Sequence[Cohort]) -> Cohort:
    """One cohort of several (e.g. the week's new spells and the returning citizens)."""
    return _concat(list(parts))


@dataclass(frozen=True, slots=True)
class ReturningSpells:
    """Citizens who found a job, lost it again and started a new spell (domain.md 5.3).

    Attributes
    ----------
    source
        Index of each job-finder in the cohort it was drawn from.
    job_start, spell_start
        Calendar weeks the job started and the new spell started (``job_start + s`` with ``s``
        geometric with the group's weekly job-separation hazard, ``s >= 1``).
    meeting_week
        Calendar week of the new spell's decision meeting, ``-1`` when the citizen left benefit
        before it (survival drawn as for new spells in :func:`draw_decision_cohort`).
    cohort
        The citizens with a meeting (``meeting_week >= 0``), in ``source`` order: the same
        serial (so the same pseudonym and RCT arm), latent type, frailty, caseworker and case
        facts as before, with the new spell's ``entry_week`` and ``decision_spell_week``.
    """

    source: np.ndarray
    job_start: np.ndarray
    spell_start: np.ndarray
    meeting_week: np.ndarray
    cohort: Cohort


def returning_spells(
    config: SimulationConfig,
    cohort: Cohort,
    *,
    week: int,
    job_week: np.ndarray,
    rng: np.random.Generator,
) -> ReturningSpells:
    """The next spell of every citizen of ``cohort`` (decided in calendar ``week``) who found a
    job (``job_week >= 0``, weeks after the decision).

    After re-employment the job ends with the weekly separation hazard of the target group
    (:meth:`SimulationConfig.separation`: 0.01 for dagpenge, so ``1 - 0.99**52`` = 41 % are
    back within a year, domain.md 5.3; 0.015 for kontanthjælp, 54 %); the new spell then has its
    decision meeting at spell week ``d`` (drawn as for new spells) if the citizen is still on
    benefit.

    Examples
    --------
    >>> cfg = SimulationConfig()
    >>> c = PopulationModel(cfg, seed=0).draw(np.random.default_rng(0), n_dagpenge=4,
    ...                                       n_kontanthjaelp=0)
    >>> r = returning_spells(cfg, c, week=10, job_week=np.array([2, -1, 0, 5]),
    ...                      rng=np.random.default_rng(1))
    >>> r.source.tolist(), bool((r.spell_start > r.job_start).all())
    ([0, 2, 3], True)
    """
    source = np.flatnonzero(job_week >= 0)
    found = cohort.subset(source)
    sigma = np.array([config.separation(GROUPS[int(g)]) for g in found.group], dtype=float)
    job_start = week + job_week[source]
    spell_start = job_start + rng.geometric(np.clip(sigma, 1e-9, 1.0)) if len(source) else job_start
    d = np.asarray(config.decision_weeks)[
        rng.choice(len(config.decision_weeks), size=len(source), p=config.decision_week_probs)
    ]
    survive = np.ones(len(source), dtype=bool)
    q = config.non_employment(found.group)
    u = rng.random(len(source))
    for i in np.flatnonzero(d > 0):
        calendar = spell_start[i] + np.arange(d[i])
        g = np.minimum(found.hazard[i] * seasonal_factor(config, calendar), 1.0)
        survive[i] = u[i] < float(np.prod((1.0 - g) * (1.0 - q[i])))
    meeting_week = np.where(survive, spell_start + d, -1)
    back = found.subset(survive)
    back = dataclasses.replace(
        back, entry_week=spell_start[survive], decision_spell_week=d[survive]
    )
    return ReturningSpells(source, job_start, spell_start, meeting_week, back)

"""Synthetic citizens: covariates, protected attributes, latent types, frailty and caseworkers.

A :class:`Cohort` is a struct of arrays (one entry per citizen) so that the outcome model can
work on all citizens of a week at once. Covariate shifts on the hazard follow domain.md 5.1;
they are normalised by their expected value within each target group so that the type
mixture keeps its calibrated mean hazard.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bandit.context import (
    CitizenContext,
    DanishProficiency,
    Education,
    Gender,
    Origin,
    ProtectedAttributes,
    Sector,
    TargetGroup,
)
from simulator.config import SimulationConfig

GROUPS = (TargetGroup.DAGPENGE, TargetGroup.KONTANTHJAELP)
EDUCATIONS = tuple(Education)
SECTORS = tuple(s for s in Sector if s is not Sector.NONE)
PROFICIENCIES = tuple(DanishProficiency)
GENDERS = (Gender.FEMALE, Gender.MALE, Gender.OTHER)
ORIGINS = (Origin.DANISH, Origin.WESTERN, Origin.NON_WESTERN)
DEMAND_LEVELS = np.array([0.5, 0.8, 1.0, 1.5, 2.5])
DEMAND_MULT = np.array([0.9, 0.95, 1.0, 1.1, 1.25])
DEMAND_PROBS = np.array([0.15, 0.25, 0.30, 0.20, 0.10])

# Per target group (dagpenge, kontanthjælp) [assumption]: covariate distributions.
AGE_BAND_PROBS = ((0.30, 0.45, 0.25), (0.40, 0.40, 0.20))
EDUCATION_PROBS = (
    (0.12, 0.13, 0.30, 0.12, 0.15, 0.18),
    (0.45, 0.15, 0.25, 0.06, 0.05, 0.04),
)
ORIGIN_PROBS = ((0.75, 0.08, 0.17), (0.55, 0.07, 0.38))
LONG_HISTORY_PROB = (0.15, 0.50)
HEALTH_PROB = (0.08, 0.25)
SINGLE_PARENT_PROB = (0.06, 0.15)
GENDER_PROBS = (0.495, 0.495, 0.01)
# P(Danish proficiency | origin): rows Danish, Western, non-Western; columns native, good,
# basic, none [assumption]. Proficiency is a proxy of origin, which is why audits matter; the
# observable truth (:mod:`simulator.truth`) inverts it with Bayes' rule.
PROFICIENCY_PROBS = np.array(
    [[0.97, 0.03, 0.0, 0.0], [0.3, 0.5, 0.15, 0.05], [0.15, 0.4, 0.3, 0.15]]
)
LONG_HISTORY_WEEKS = 52

# domain.md 5.1 covariate shifts on the job hazard.
MULT_AGE_50 = 0.70
MULT_LOWER_SECONDARY = 0.80
MULT_NON_WESTERN = 0.75
MULT_LONG_HISTORY = 0.70
MULT_HEALTH = 0.70


def expected_covariate_multiplier(g: int) -> float:
    """Expected covariate multiplier in target group index ``g`` (covariates independent)."""
    terms = (
        (AGE_BAND_PROBS[g][2], MULT_AGE_50),
        (EDUCATION_PROBS[g][0], MULT_LOWER_SECONDARY),
        (ORIGIN_PROBS[g][2], MULT_NON_WESTERN),
        (LONG_HISTORY_PROB[g], MULT_LONG_HISTORY),
        (HEALTH_PROB[g], MULT_HEALTH),
    )
    value = float(np.dot(DEMAND_PROBS, DEMAND_MULT))
    for p, m in terms:
        value *= 1.0 - p + p * m
    return value


def observed_covariate_multiplier(
    age: np.ndarray,
    education: np.ndarray,
    history_weeks: np.ndarray,
    health: np.ndarray,
    demand: np.ndarray,
) -> np.ndarray:
    """The hazard shift of the covariates the service observes (domain.md 5.1), shape ``(n,)``.

    Age 50+, lower-secondary education, a long benefit history (52+ weeks), a health limitation
    and local labour demand; origin (not observed) and the normalisation by
    :func:`expected_covariate_multiplier` are applied by the caller.

    Examples
    --------
    >>> one = np.array([1])
    >>> float(observed_covariate_multiplier(one * 55, one * 0, one * 0, one > 0, one * 1.0)[0])
    0.392
    """
    mult: np.ndarray = (
        np.where(age >= 50, MULT_AGE_50, 1.0)  # noqa: PLR2004
        * np.where(education == 0, MULT_LOWER_SECONDARY, 1.0)
        * np.where(history_weeks >= LONG_HISTORY_WEEKS, MULT_LONG_HISTORY, 1.0)
        * np.where(health, MULT_HEALTH, 1.0)
        * DEMAND_MULT[np.searchsorted(DEMAND_LEVELS, demand)]
    )
    return mult


@dataclass(frozen=True, slots=True)
class Cohort:
    """Citizens as arrays, all of shape ``(n,)``.

    ``hazard`` is the citizen's baseline weekly job hazard before seasonality and programmes
    (type x covariates x frailty x caseworker x job centre x business cycle).
    """

    serial: np.ndarray
    group: np.ndarray
    age: np.ndarray
    education: np.ndarray
    history_weeks: np.ndarray
    sector: np.ndarray
    proficiency: np.ndarray
    health: np.ndarray
    single_parent: np.ndarray
    demand: np.ndarray
    gender: np.ndarray
    origin: np.ndarray
    type_index: np.ndarray
    slow_type: np.ndarray
    caseworker: np.ndarray
    jobcentre: np.ndarray
    hazard: np.ndarray
    entry_week: np.ndarray
    decision_spell_week: np.ndarray

    def __len__(self) -> int:
        return int(self.serial.shape[0])

    def subset(self, mask: np.ndarray) -> Cohort:
        """The citizens selected by a boolean mask or index array."""
        return Cohort(**{name: getattr(self, name)[mask] for name in self.__slots__})

    def context(self, i: int, weeks_unemployed: int | None = None) -> CitizenContext:
        """Model features of citizen ``i`` (protected attributes excluded)."""
        weeks = int(self.decision_spell_week[i]) if weeks_unemployed is None else weeks_unemployed
        return CitizenContext(
            target_group=GROUPS[int(self.group[i])],
            age=int(self.age[i]),
            education=EDUCATIONS[int(self.education[i])],
            weeks_unemployed=weeks,
            benefit_history_weeks=int(self.history_weeks[i]),
            last_sector=SECTORS[int(self.sector[i])],
            danish_proficiency=PROFICIENCIES[int(self.proficiency[i])],
            health_limitation=bool(self.health[i]),
            single_parent=bool(self.single_parent[i]),
            labour_demand_index=float(self.demand[i]),
        )

    def protected(self, i: int) -> ProtectedAttributes:
        """Protected attributes of citizen ``i`` (audit only)."""
        return ProtectedAttributes(
            gender=GENDERS[int(self.gender[i])], origin=ORIGINS[int(self.origin[i])]
        )


def _draw_group(
    config: SimulationConfig, rng: np.random.Generator, g: int, n: int
) -> dict[str, np.ndarray]:
    band = rng.choice(3, size=n, p=AGE_BAND_PROBS[g])
    lo = np.array([18, 30, 50])[band]
    hi = np.array([29, 49, 66])[band]
    age = rng.integers(lo, hi + 1)
    education = rng.choice(len(EDUCATIONS), size=n, p=EDUCATION_PROBS[g])
    origin = rng.choice(3, size=n, p=ORIGIN_PROBS[g])
    long_history = rng.random(n) < LONG_HISTORY_PROB[g]
    history = np.where(long_history, rng.integers(52, 157, n), rng.integers(0, 52, n))
    health = rng.random(n) < HEALTH_PROB[g]
    demand_level = rng.choice(len(DEMAND_LEVELS), size=n, p=DEMAND_PROBS)
    u = rng.random(n)
    proficiency = (u[:, None] > np.cumsum(PROFICIENCY_PROBS[origin], axis=1)).sum(axis=1)
    mixture = config.types[GROUPS[g]]
    type_index = rng.choice(len(mixture.shares), size=n, p=mixture.shares)
    cov = (
        observed_covariate_multiplier(age, education, history, health, DEMAND_LEVELS[demand_level])
        * np.where(origin == 2, MULT_NON_WESTERN, 1.0)  # noqa: PLR2004
        / expected_covariate_multiplier(g)
    )
    v = config.frailty_variance
    frailty = rng.gamma(1.0 / v, v, n) if v > 0 else np.ones(n)
    return {
        "group": np.full(n, g, dtype=np.int8),
        "age": age,
        "education": education,
        "history_weeks": history,
        "sector": rng.integers(0, len(SECTORS), n),
        "proficiency": np.minimum(proficiency, len(PROFICIENCIES) - 1),
        "health": health,
        "single_parent": rng.random(n) < SINGLE_PARENT_PROB[g],
        "demand": DEMAND_LEVELS[demand_level],
        "gender": rng.choice(3, size=n, p=GENDER_PROBS),
        "origin": origin,
        "type_index": type_index,
        "slow_type": type_index == len(mixture.shares) - 1,
        "type_hazard": np.asarray(mixture.hazards)[type_index]
        * cov
        * frailty
        * config.hazard_scale[g],
    }


class PopulationModel:
    """Draws citizens; owns the caseworker and job-centre random effects.

    Parameters
    ----------
    config
        Simulation configuration.
    seed
        Seed of the caseworker/job-centre effects (citizens are drawn with the caller's rng).

    Examples
    --------
    >>> model = PopulationModel(SimulationConfig(), seed=1)
    >>> cohort = model.draw(np.random.default_rng(0), n_dagpenge=50, n_kontanthjaelp=10)
    >>> len(cohort), bool((cohort.hazard > 0).all())
    (60, True)
    """

    def __init__(self, config: SimulationConfig, *, seed: int = 0) -> None:
        self.config = config
        self.seed = seed
        rng = np.random.default_rng(seed)
        self.caseworker_effect = np.exp(
            rng.normal(0.0, config.caseworker_sd, config.n_caseworkers)
            - config.caseworker_sd**2 / 2
        )
        self.jobcentre_effect = np.exp(
            rng.normal(0.0, config.jobcentre_sd, config.n_jobcentres) - config.jobcentre_sd**2 / 2
        )
        self._next_serial = 0

    def draw(
        self,
        rng: np.random.Generator,
        *,
        n_dagpenge: int,
        n_kontanthjaelp: int,
        entry_week: int = 0,
        decision_spell_week: int = 0,
    ) -> Cohort:
        """Draw new citizens (a spell starting at ``entry_week``)."""
        parts = [
            _draw_group(self.config, rng, g, n) for g, n in ((0, n_dagpenge), (1, n_kontanthjaelp))
        ]
        data = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        n = n_dagpenge + n_kontanthjaelp
        caseworker = rng.integers(0, self.config.n_caseworkers, n)
        jobcentre = caseworker % self.config.n_jobcentres
        hazard = (
            data.pop("type_hazard")
            * self.caseworker_effect[caseworker]
            * self.jobcentre_effect[jobcentre]
            * self.config.business_cycle
        )
        serial = np.arange(self._next_serial, self._next_serial + n)
        self._next_serial += n
        return Cohort(
            serial=serial,
            caseworker=caseworker,
            jobcentre=jobcentre,
            hazard=hazard,
            entry_week=np.full(n, entry_week),
            decision_spell_week=np.full(n, decision_spell_week),
            **data,
        )


def seasonal_factor(config: SimulationConfig, calendar_weeks: np.ndarray) -> np.ndarray:
    """Seasonal multiplier of the job hazard for each calendar week (any shape)."""
    factor: np.ndarray = 1.0 + config.seasonal_amplitude * np.sin(
        2.0 * np.pi * calendar_weeks / 52.0
    )
    return factor

"""Weekly decision cohorts: who meets a caseworker this week, and their ground truth.

Spells start every week (Poisson inflow). Each spell has its decision meeting at spell week
``d`` (:attr:`SimulationConfig.decision_weeks`); it takes place only if the citizen is still on
benefit then, which is drawn from the citizen's exact no-intervention survival. The citizens
meeting a caseworker in calendar week ``w`` are therefore the survivors of the spells that
started in weeks ``w - d``; the survivors are selected on their latent type, as in reality.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bandit.context import CitizenContext, TargetGroup
from bandit.eligibility import exclusion_reason
from bandit.types import Action, FeatureValue
from simulator.config import SimulationConfig
from simulator.outcomes import (
    ArmEffects,
    expected_benefit_weeks,
    hazard_paths,
    job_probability,
)
from simulator.population import Cohort, PopulationModel, seasonal_factor


def _concat(parts: list[Cohort]) -> Cohort:
    names = Cohort.__slots__
    return Cohort(**{k: np.concatenate([getattr(p, k) for p in parts]) for k in names})


def draw_decision_cohort(
    config: SimulationConfig, population: PopulationModel, week: int, rng: np.random.Generator
) -> Cohort:
    """Citizens whose decision meeting falls in calendar ``week``."""
    q = config.non_employment_hazard
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
            survive = np.prod((1.0 - g) * (1.0 - q), axis=1)
            cohort = cohort.subset(rng.random(len(cohort)) < survive)
        parts.append(cohort)
    return _concat(parts)


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
        Eligibility mask, shape ``(n, K)`` (from :func:`bandit.eligibility.exclusion_reason`).
    g
        Weekly job probabilities, shape ``(n, K, H)``.
    p_job
        TRUE P(job within H) of every action, shape ``(n, K)``.
    benefit_weeks
        TRUE expected weeks on benefit within H, shape ``(n, K)``.
    """

    cohort: Cohort
    contexts: tuple[CitizenContext, ...]
    features: tuple[dict[str, FeatureValue], ...]
    eligible: np.ndarray
    g: np.ndarray
    p_job: np.ndarray
    benefit_weeks: np.ndarray

    def eligible_actions(self, i: int, actions: tuple[Action, ...]) -> list[Action]:
        """The eligible actions of citizen ``i`` in action-set order."""
        return [a for a, ok in zip(actions, self.eligible[i], strict=True) if ok]


def prepare(
    config: SimulationConfig, cohort: Cohort, effects: ArmEffects, *, week: int
) -> PreparedCohort:
    """Contexts, eligibility and exact truth for a decision cohort in calendar ``week``."""
    contexts = tuple(cohort.context(i) for i in range(len(cohort)))
    eligible = np.array(
        [[exclusion_reason(arm, ctx) is None for arm in effects.arms] for ctx in contexts],
        dtype=bool,
    ).reshape(len(cohort), len(effects.arms))
    h = config.horizon_weeks
    g = hazard_paths(config, cohort, effects, decision_week=week, n_weeks=h)
    q = config.non_employment_hazard
    return PreparedCohort(
        cohort=cohort,
        contexts=contexts,
        features=tuple(ctx.features() for ctx in contexts),
        eligible=eligible,
        g=g,
        p_job=job_probability(g, q, h),
        benefit_weeks=expected_benefit_weeks(g, q, h),
    )

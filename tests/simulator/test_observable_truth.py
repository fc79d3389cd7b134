"""The fast exact truth: kernel vs explicit hazard paths, vectorised eligibility, and p_obs."""

from __future__ import annotations

import numpy as np
import pytest

from bandit.catalog import default_catalog
from bandit.eligibility import exclusion_reason
from simulator.arrivals import draw_decision_cohort, legal_eligibility, prepare
from simulator.config import SimulationConfig
from simulator.outcomes import (
    arm_effects,
    expected_benefit_weeks,
    job_probability,
    select_arms,
)
from simulator.population import PopulationModel, seasonal_factor
from simulator.truth import latent_posterior, observable_truth


def _cohorts(config: SimulationConfig, weeks: range, seed: int):  # type: ignore[no-untyped-def]
    population = PopulationModel(config, seed=seed)
    rng = np.random.default_rng(seed)
    return population, [(w, draw_decision_cohort(config, population, w, rng)) for w in weeks]


def test_fast_truth_equals_explicit_hazard_paths() -> None:
    config = SimulationConfig(scale=0.2)
    catalog = default_catalog()
    arms = select_arms(catalog, 0)
    effects = arm_effects(config, catalog, arms, seed=3)
    population, cohorts = _cohorts(config, range(20, 23), seed=3)
    for week, cohort in cohorts:
        prepared = prepare(config, cohort, effects, week=week, population=population)
        g = prepared.g
        h, q = config.horizon_weeks, config.non_employment(cohort.group)
        assert g.shape == (len(cohort), len(arms), h)
        assert np.allclose(prepared.p_job, job_probability(g, q, h), atol=1e-5)
        assert np.allclose(prepared.benefit_weeks, expected_benefit_weeks(g, q, h), atol=1e-4)
        chosen = np.arange(len(cohort)) % len(arms)
        assert np.array_equal(prepared.paths(chosen), g[np.arange(len(cohort)), chosen])


def test_vectorised_eligibility_equals_the_rules() -> None:
    config = SimulationConfig(scale=0.3)
    arms = tuple(default_catalog())
    _, cohorts = _cohorts(config, range(3), seed=5)
    for _, cohort in cohorts:
        expected = np.array(
            [
                [exclusion_reason(arm, cohort.context(i)) is None for arm in arms]
                for i in range(len(cohort))
            ]
        )
        assert np.array_equal(legal_eligibility(cohort, arms), expected)
        assert 0 < expected.mean() < 1


def test_exhaustion_fallback_matches_kernel_model() -> None:
    # Decisions late in a dagpenge spell reach week 104: the explicit path is used.
    config = SimulationConfig(scale=0.05, decision_weeks=(90,), decision_week_probs=(1.0,))
    catalog = default_catalog()
    arms = select_arms(catalog, 1)
    effects = arm_effects(config, catalog, arms, seed=1)
    population = PopulationModel(config, seed=1)
    cohort = population.draw(
        np.random.default_rng(1), n_dagpenge=50, n_kontanthjaelp=10, decision_spell_week=90
    )
    prepared = prepare(config, cohort, effects, week=0, population=population)
    g = prepared.g
    q = config.non_employment(prepared.cohort.group)
    assert np.allclose(prepared.p_job, job_probability(g, q, config.horizon_weeks))
    assert np.isfinite(prepared.p_obs).all()


@pytest.mark.slow
def test_observable_truth_is_the_conditional_mean_of_the_truth() -> None:
    """E[p_job | observed] = p_obs: residual means vanish within observable cells.

    For every partition of citizens by observed facts, the mean of ``p_job - p_obs`` must be 0
    up to Monte-Carlo error (4 standard errors of the cell mean, plus 1e-4 for the float32
    kernel). Cells: everyone; target group x decision week x Danish proficiency.
    """
    config = SimulationConfig(scale=3.0)
    catalog = default_catalog()
    arms = select_arms(catalog, 1)
    effects = arm_effects(config, catalog, arms, seed=7)
    population, cohorts = _cohorts(config, range(0, 48, 4), seed=7)
    resid, keys = [], []
    for week, cohort in cohorts:
        prepared = prepare(config, cohort, effects, week=week, population=population)
        resid.append(prepared.p_job - prepared.p_obs)
        keys.append(
            np.stack([cohort.group, cohort.decision_spell_week, cohort.proficiency], axis=1)
        )
    r, key = np.concatenate(resid), np.concatenate(keys)
    assert len(r) > 20_000

    def check(mask: np.ndarray) -> None:
        part = r[mask]
        se = part.std(axis=0, ddof=1) / np.sqrt(part.shape[0])
        assert np.all(np.abs(part.mean(axis=0)) <= 4 * se + 1e-4), (part.mean(axis=0), se)

    check(np.ones(len(r), dtype=bool))
    cells, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    for c in np.flatnonzero(counts >= 500):
        check(inverse.ravel() == c)
    assert np.flatnonzero(counts >= 500).size >= 6


@pytest.mark.slow
@pytest.mark.parametrize("spell_week", [0, 13])
def test_observable_truth_among_identical_citizens(spell_week: int) -> None:
    """Citizens with identical observed facts: the mean of ``p_job`` is their common ``p_obs``.

    A large population is drawn with the production sampler, decision cohorts at spell week
    13 are selected on survival exactly as :func:`draw_decision_cohort` does, and the citizens
    whose model features are identical (up to the exact age under 50 and the benefit-history
    weeks under 52, which the outcome model does not read) form the cell. Tolerance: 4 Monte-
    Carlo standard errors of the mean of ``p_job`` in the cell.
    """
    config = SimulationConfig()
    catalog = default_catalog()
    arms = select_arms(catalog, 1)
    effects = arm_effects(config, catalog, arms, seed=9)
    population = PopulationModel(config, seed=9)
    rng = np.random.default_rng(9)
    week = 30
    cohort = population.draw(
        rng,
        n_dagpenge=400_000 if spell_week == 0 else 1_600_000,
        n_kontanthjaelp=0,
        entry_week=week - spell_week,
        decision_spell_week=spell_week,
    )
    same = (
        (cohort.education == 2)
        & (cohort.age < 50)
        & (cohort.history_weeks < 52)
        & ~cohort.health
        & ~cohort.single_parent
        & (cohort.demand == 1.0)
        & (cohort.proficiency == 0)
        & (cohort.sector == 3)
    )
    cohort = cohort.subset(same)
    if spell_week:
        calendar = cohort.entry_week[0] + np.arange(spell_week)
        g = np.minimum(cohort.hazard[:, None] * seasonal_factor(config, calendar)[None], 1.0)
        q = config.non_employment(cohort.group)[:, None]
        survive = np.prod((1.0 - g) * (1.0 - q), axis=1)
        cohort = cohort.subset(rng.random(len(cohort)) < survive)
    assert len(cohort) > 300
    prepared = prepare(config, cohort, effects, week=week, population=population)
    # One observable cell: every citizen has the same p_obs row.
    assert np.allclose(prepared.p_obs, prepared.p_obs[0], atol=1e-6)
    mean = prepared.p_job.mean(axis=0)
    se = prepared.p_job.std(axis=0, ddof=1) / np.sqrt(len(cohort))
    assert np.all(np.abs(mean - prepared.p_obs[0]) <= 4 * se + 1e-4), (mean - prepared.p_obs[0], se)


def test_type_posterior_reflects_survival() -> None:
    config = SimulationConfig()
    population = PopulationModel(config, seed=0)
    rng = np.random.default_rng(0)
    early = population.draw(rng, n_dagpenge=200, n_kontanthjaelp=0, decision_spell_week=0)
    late = population.draw(rng, n_dagpenge=200, n_kontanthjaelp=0, decision_spell_week=26)
    p_early = latent_posterior(config, early, population=population).type_posterior
    p_late = latent_posterior(config, late, population=population).type_posterior
    assert np.allclose(p_early.sum(axis=1), 1.0)
    assert np.allclose(p_early.mean(axis=0), config.types[next(iter(config.types))].shares)
    # Survivors of 26 weeks are far more often the slow type (10 % at entry; about half of
    # the 26-week survivors under the 5.1 mixture).
    assert p_late[:, -1].mean() > 0.4 > 0.15 > p_early[:, -1].mean()


def test_observable_truth_without_population_is_close() -> None:
    config = SimulationConfig(scale=0.2)
    catalog = default_catalog()
    arms = select_arms(catalog, 1)
    effects = arm_effects(config, catalog, arms, seed=2)
    population, cohorts = _cohorts(config, range(1), seed=2)
    _, cohort = cohorts[0]
    with_pop = observable_truth(config, cohort, effects, week=0, population=population)
    law = observable_truth(config, cohort, effects, week=0)
    assert np.abs(with_pop - law).max() < 0.02
    three = observable_truth(config, cohort, effects, week=0, population=population, nodes=3)
    assert np.abs(with_pop - three).max() < 5e-3  # OBS_NODES quadrature error

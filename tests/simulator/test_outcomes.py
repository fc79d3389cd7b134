"""The exact outcome model: closed forms, Monte Carlo agreement, heterogeneity."""

from __future__ import annotations

import numpy as np

from bandit.catalog import Family, default_catalog
from simulator.config import SimulationConfig
from simulator.outcomes import (
    arm_effects,
    hazard_paths,
    job_probability,
    sample_outcomes,
    select_arms,
)
from simulator.population import PopulationModel


def test_job_probability_closed_form() -> None:
    g, q, h = 0.07, 0.008, 26
    r = (1 - g) * (1 - q)
    expected = g * (1 - r**h) / (1 - r)  # geometric series sum_{t<H} r^t g
    got = job_probability(np.full((2, 40), g), q, h)
    assert np.allclose(got, expected, rtol=1e-12)


def test_sampled_outcomes_match_exact_probability() -> None:
    rng = np.random.default_rng(3)
    g = np.tile(np.linspace(0.01, 0.3, 26), (200_000, 1))
    exact = float(job_probability(g[:1], 0.008, 26)[0])
    realised = sample_outcomes(g, 0.008, 26, rng)
    # Binomial SE sqrt(p(1-p)/n) <= 0.0012 for n = 200,000; 5 SE.
    assert abs(realised.employed.mean() - exact) < 5 * np.sqrt(exact * (1 - exact) / 200_000)
    assert realised.benefit_weeks.min() >= 1 and realised.benefit_weeks.max() <= 26


def test_programme_effects_follow_heterogeneity_rule() -> None:
    config = SimulationConfig(seasonal_amplitude=0.0)
    catalog = default_catalog()
    arms = select_arms(catalog, 1)
    effects = arm_effects(config, catalog, arms, seed=0)
    cohort = PopulationModel(config, seed=0).draw(
        np.random.default_rng(0), n_dagpenge=3000, n_kontanthjaelp=0
    )
    g = hazard_paths(config, cohort, effects, decision_week=0, n_weeks=104)
    k_std = effects.family.index(Family.STANDARD_CONTACT)
    k_cls = effects.family.index(Family.CLASSROOM_TRAINING)
    # Standard contact is the untouched baseline hazard.
    assert np.allclose(g[:, k_std, 0], np.minimum(cohort.hazard, 1.0))
    fast = cohort.type_index == 0
    slow = cohort.slow_type
    medium = ~fast & ~slow
    length = int(effects.length[k_cls])
    log_during = np.log(g[:, k_cls, 0] / g[:, k_std, 0])
    log_after = np.log(g[:, k_cls, length] / g[:, k_std, length])
    b_lock, b_post = effects.beta_lock[k_cls], effects.beta_post[k_cls]
    assert b_lock < 0  # classroom training locks in (family x0.5, offer noise sd 0.1)
    # domain.md 5.2 rule: fast type beta_lock x 1.5 and beta_post x 0.5; slow type the reverse.
    for mask, lock_scale, post_scale in ((fast, 1.5, 0.5), (medium, 1.0, 1.0), (slow, 0.5, 1.5)):
        assert mask.any()
        assert np.allclose(log_during[mask], lock_scale * b_lock)
        assert np.allclose(log_after[mask], post_scale * b_post)
    # After the post-programme window the multiplier is back to 1.
    end = length + int(effects.after_weeks[k_cls])
    assert np.allclose(g[:, k_cls, end], g[:, k_std, end])


def test_offer_effects_vary_around_family_and_do_not_depend_on_subset() -> None:
    config = SimulationConfig()
    catalog = default_catalog()
    one = arm_effects(config, catalog, select_arms(catalog, 1), seed=4)
    three = arm_effects(config, catalog, select_arms(catalog, 3), seed=4)
    for k, arm in enumerate(one.arms):
        j = three.ids.index(arm.id)
        assert three.beta_post[j] == one.beta_post[k]
    meetings = [j for j, f in enumerate(three.family) if f is Family.INDIVIDUAL_MEETINGS]
    assert len(set(three.beta_post[meetings].tolist())) == 3

"""The exact outcome model: closed forms, Monte Carlo agreement, heterogeneity."""

from __future__ import annotations

import numpy as np

from bandit.catalog import Family, default_catalog
from simulator.config import SimulationConfig
from simulator.outcomes import (
    arm_effects,
    citizen_log_effects,
    hazard_paths,
    job_probability,
    observable_log_effects,
    sample_outcomes,
    select_arms,
    weekly_seats,
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
    # Latent-type rule alone (observable heterogeneity off).
    config = SimulationConfig(seasonal_amplitude=0.0, heterogeneity=0.0)
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


def test_observable_heterogeneity_follows_domain_statements() -> None:
    config = SimulationConfig()
    catalog = default_catalog()
    arms = select_arms(catalog, 0)
    effects = arm_effects(config, catalog, arms, seed=0)
    cohort = PopulationModel(config, seed=0).draw(
        np.random.default_rng(0), n_dagpenge=4000, n_kontanthjaelp=1000
    )
    b_lock, b_post = observable_log_effects(config, cohort, effects)
    fam = np.asarray([f.value for f in effects.family])

    def mean_post(family: Family, mask: np.ndarray) -> float:
        return float(b_post[np.ix_(mask, fam == family.value)].mean())

    academic = cohort.education >= 4
    low = cohort.education == 0
    ltu = cohort.history_weeks >= 52
    high_emp = (cohort.education >= 3) & (cohort.demand >= 1.0) & ~ltu & ~cohort.health
    # Job-search course harms the observably highly employable (sign flip).
    assert (
        mean_post(Family.JOB_SEARCH_COURSE, high_emp)
        < 0
        < mean_post(Family.JOB_SEARCH_COURSE, ~high_emp)
    )
    # Private internship: larger for the long-term unemployed and the low-educated.
    assert mean_post(Family.PRIVATE_INTERNSHIP, ltu) > mean_post(Family.PRIVATE_INTERNSHIP, ~ltu)
    assert mean_post(Family.PRIVATE_INTERNSHIP, low) > mean_post(
        Family.PRIVATE_INTERNSHIP, academic
    )
    # Public wage subsidy: post effect only for masters (x1.3 around the offer's own draw).
    master = cohort.education == 5
    pws = fam == Family.PUBLIC_WAGE_SUBSIDY.value
    assert np.all(b_post[np.ix_(~master, pws)] == 0)
    assert mean_post(Family.PUBLIC_WAGE_SUBSIDY, master) > np.log(1.2)
    # Mentor: mainly kontanthjælp and health-limited people.
    kh = cohort.group == 1
    assert mean_post(Family.MENTOR, kh | cohort.health) > 2 * mean_post(
        Family.MENTOR, ~kh & ~cohort.health
    )
    # Meetings smaller for academics.
    assert mean_post(Family.INDIVIDUAL_MEETINGS, academic) < mean_post(
        Family.INDIVIDUAL_MEETINGS, ~academic
    )
    # Off switch: heterogeneity=0 gives the offer's own effect for every citizen.
    off = SimulationConfig(heterogeneity=0.0)
    lock0, post0 = observable_log_effects(off, cohort, effects)
    assert np.allclose(lock0, effects.beta_lock[None, :])
    assert np.allclose(post0[~kh], effects.beta_post[None, :])
    # The true effects add the latent-type scale on top.
    true_lock, true_post = citizen_log_effects(config, cohort, effects)
    fast = cohort.type_index == 0
    assert np.allclose(
        true_post[fast][:, fam == "classroom_training"],
        0.5 * b_post[fast][:, fam == "classroom_training"],
    )
    assert np.isfinite(b_lock).all()


def test_full_catalog_and_capacity_by_default() -> None:
    catalog = default_catalog()
    config = SimulationConfig()
    arms = select_arms(catalog, config.offers_per_family)
    assert arms == tuple(catalog)
    seats = weekly_seats(config, catalog, arms)
    for arm, s in zip(arms, seats, strict=True):
        assert s == (np.inf if arm.capacity is None else max(1, arm.capacity))
    # A family-level subset stands for the whole family's seats.
    one = select_arms(catalog, 1)
    family_seats = weekly_seats(SimulationConfig(offers_per_family=1), catalog, one)
    k = 1
    size = sum(1 for a in catalog if a.family is one[k].family)
    assert family_seats[k] == round(one[k].capacity * size)  # type: ignore[operator]

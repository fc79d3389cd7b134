"""Exact ground truth, fast: P(job within H) given everything, and given what the service sees.

Two quantities per citizen ``i`` and action ``k`` of a decision cohort:

* ``p_job[i, k]``: the TRUE P(job within H) given the citizen's latent type, frailty, origin,
  caseworker and job centre (:func:`job_and_benefit` on the citizen's own hazard);
* ``p_obs[i, k] = E[p_job[i, k] | observed]``: the same, integrated over everything the
  service does not observe (:func:`observable_truth`). This is the value of the best policy
  that uses the model features only (the *observable oracle*).

The integral of ``p_obs`` is over the posterior of the unobservables given the observed
covariates AND survival to the decision spell week ``d`` (decision cohorts are survivors):

* the latent type (exact: a finite mixture);
* origin, which shifts the hazard (x0.75 non-Western) but is not a feature; its posterior
  follows from Danish proficiency by Bayes' rule (exact);
* the gamma frailty and the caseworker x job-centre effect, which are **approximated** by one
  gamma variable with the mean and variance of their product (moment matching; the realised
  caseworker and centre effects of the :class:`~simulator.population.PopulationModel` when
  given, their log-normal law otherwise). Frailty, origin and this effect are integrated by
  generalised Gauss-Laguerre quadrature (``FINE_NODES`` per origin class), reweighted by the
  survival to ``d``, and compressed per citizen and type to a ``nodes``-point Gauss rule with
  the same first ``2 nodes`` moments (exact for hazards of polynomial degree ``2 nodes - 1``).

The kernel uses that the only exits are a job and the non-employment exit ``q``, so with
``a_t`` the survival at the start of week ``t`` and ``B = sum_{t<H} a_t`` (expected weeks on
benefit), ``P(job within H) = 1 - a_H - q / (1 - q) (B - 1 + a_H)``: one running product and
one running sum over the horizon, arrays of shape ``(n, K)`` only. It runs in float32
(absolute error below 1e-5 on both outputs); the phase of each action (lock-in, post effect,
none) changes column by column as the weeks pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import roots_genlaguerre

from simulator.config import EXHAUSTION_WEEK, SimulationConfig
from simulator.outcomes import (
    ArmEffects,
    Rate,
    expected_benefit_weeks,
    hazard_paths,
    job_probability,
    observable_log_effects,
    per_row,
    type_scales,
)
from simulator.population import (
    GROUPS,
    MULT_NON_WESTERN,
    ORIGIN_PROBS,
    PROFICIENCY_PROBS,
    Cohort,
    PopulationModel,
    expected_covariate_multiplier,
    observed_covariate_multiplier,
    seasonal_factor,
)

FINE_NODES = 16
"""Gauss-Laguerre nodes per origin class for the posterior of the unobserved hazard factor."""
OBS_NODES = 2
"""Default size of the per-citizen, per-type Gauss rule that ``p_obs`` is evaluated on. Against
a 5-node rule, 2 nodes err by 0.18 pp on average (max 0.4 pp), 3 nodes by 0.03 pp (max 0.08 pp)
at 1.5x the cost; the hazard's kink at ``min(1, .)`` limits the rule's polynomial exactness."""
_SPIKE_WEEK = EXHAUSTION_WEEK - 9
"""Citizens per block of the kernel: keeps its (rows, K) working arrays in the L2 cache."""


def job_and_benefit(
    hazard: np.ndarray,
    season: np.ndarray,
    e_lock: np.ndarray,
    e_post: np.ndarray,
    effects: ArmEffects,
    q: Rate,
    *,
    dtype: type[np.floating] = np.float32,
    schedule: Schedule | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact P(job within H) and expected benefit weeks within H, each of shape ``(n, K)``.

    Parameters
    ----------
    hazard
        Baseline weekly job hazard of each citizen before seasonality, shape ``(n,)``.
    season
        Seasonal factor of each week after the decision, shape ``(H,)``; ``H`` is the horizon.
    e_lock, e_post
        Lock-in and post-programme hazard multipliers, shape ``(n, K)``.
    effects
        Lengths, post-effect durations and hire probabilities of the actions.
    q
        Weekly non-employment exit, one number or one per citizen (shape ``(n,)``).
    dtype
        Working precision (float32: absolute error below 1e-5 on ``P``, 1e-4 on the weeks).
    schedule
        :func:`phase_schedule` of ``effects`` (computed when omitted).

    Notes
    -----
    Same model as :func:`simulator.outcomes.hazard_paths` followed by
    :func:`~simulator.outcomes.job_probability` and
    :func:`~simulator.outcomes.expected_benefit_weeks` when no dagpenge spell reaches the
    exhaustion spike or week 104 within the horizon (:func:`needs_exhaustion`).

    Examples
    --------
    >>> from bandit.catalog import default_catalog
    >>> from simulator.outcomes import arm_effects, select_arms
    >>> cat = default_catalog()
    >>> eff = arm_effects(SimulationConfig(), cat, select_arms(cat, 1)[:1], seed=0)
    >>> one = np.ones((1, 1))
    >>> p, b = job_and_benefit(np.array([0.5]), np.ones(3), one, one, eff, 0.0)
    >>> round(float(p[0, 0]), 4), round(float(b[0, 0]), 4)  # 1 - 0.5**3, 1 + 0.5 + 0.25
    (0.875, 1.75)
    """
    qq = per_row(q, 2)  # a number, or (n, 1)
    keep = np.asarray(1.0 - qq, dtype=dtype)
    h = hazard.astype(dtype)[:, None]
    hm = np.multiply(e_lock, h, dtype=dtype)  # hazard x current multiplier (season per week)
    post = e_post.astype(dtype, copy=False)
    bound = hazard * np.maximum(np.maximum(e_lock.max(axis=1), e_post.max(axis=1)), 1.0)
    alive = np.ones_like(hm)
    weeks = np.zeros_like(hm)
    z = np.empty_like(hm)
    steps = schedule or phase_schedule(effects, len(season))
    for t, (switch, stop, hired, hire_keep) in enumerate(steps[: len(season)]):
        if switch.size:
            hm[:, switch] = post[:, switch] * h
        if stop.size:
            hm[:, stop] = h
        weeks += alive
        np.multiply(hm, np.asarray(-(1.0 - qq) * season[t], dtype=dtype), out=z)
        z += keep
        clip = np.flatnonzero(bound * season[t] > 1.0)  # rows where min(1, .) may bind
        if clip.size:
            z[clip] = np.maximum(z[clip], 0.0)
        if hired.size:
            z[:, hired] *= hire_keep.astype(dtype)
        alive *= z
    ratio = qq / (1.0 - qq)
    a_end = alive.astype(float)
    benefit = weeks.astype(float)
    p_job = 1.0 - a_end - ratio * (benefit - 1.0 + a_end)
    return p_job, benefit


Schedule = list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]


def phase_schedule(effects: ArmEffects, horizon: int) -> Schedule:
    """Per week: actions entering the post phase, leaving it, and hiring (with 1 - hire)."""
    length, end = effects.length, effects.length + effects.after_weeks
    out = []
    for t in range(horizon):
        hired = np.flatnonzero((effects.hire > 0) & (length == t))
        out.append(
            (
                np.flatnonzero(length == t),
                np.flatnonzero(end == t),
                hired,
                1.0 - effects.hire[hired],
            )
        )
    return out


def needs_exhaustion(config: SimulationConfig, cohort: Cohort) -> bool:
    """True when a dagpenge spell reaches the exhaustion spike or week 104 within the horizon."""
    dagpenge = cohort.group == 0
    if not dagpenge.any():
        return False
    last = int(cohort.decision_spell_week[dagpenge].max()) + config.horizon_weeks - 1
    limit = _SPIKE_WEEK if config.exhaustion_spike != 1.0 else EXHAUSTION_WEEK
    return last >= limit


def full_truth(
    config: SimulationConfig,
    cohort: Cohort,
    effects: ArmEffects,
    log_effects: tuple[np.ndarray, np.ndarray],
    *,
    week: int,
) -> tuple[np.ndarray, np.ndarray]:
    """TRUE ``p_job`` and expected benefit weeks within H given everything, each ``(n, K)``.

    ``log_effects`` are the citizens' own :func:`~simulator.outcomes.citizen_log_effects`.
    Falls back to the explicit ``(n, K, H)`` hazard paths when exhaustion is in reach.
    """
    h, q = config.horizon_weeks, config.non_employment(cohort.group)
    if needs_exhaustion(config, cohort):
        g = hazard_paths(
            config, cohort, effects, decision_week=week, n_weeks=h, log_effects=log_effects
        )
        return job_probability(g, q, h), expected_benefit_weeks(g, q, h)
    season = seasonal_factor(config, week + np.arange(h))
    e_lock, e_post = (np.exp(b.astype(np.float32)) for b in log_effects)
    return job_and_benefit(cohort.hazard, season, e_lock, e_post, effects, q)


@dataclass(frozen=True, slots=True)
class LatentPosterior:
    """Posterior quadrature of the unobservables of each citizen, given what is observed.

    Attributes
    ----------
    known
        Observed part of the baseline hazard (covariates, calibration, business cycle),
        shape ``(n,)``.
    type_hazard
        Baseline hazard of each latent type for each citizen's group, shape ``(n, T)``.
    nodes, weights
        Unobserved hazard factor (origin x frailty x caseworker x centre) at each quadrature
        node and its posterior weight including the type's posterior, shape ``(n, T, J)``;
        weights sum to 1 per citizen.
    """

    known: np.ndarray
    type_hazard: np.ndarray
    nodes: np.ndarray
    weights: np.ndarray

    @property
    def type_posterior(self) -> np.ndarray:
        """P(latent type | observed, survived to the decision), shape ``(n, T)``."""
        out: np.ndarray = self.weights.sum(axis=2)
        return out


def _effect_moments(
    config: SimulationConfig, population: PopulationModel | None
) -> tuple[float, float]:
    """Mean and E[X^2] of the caseworker x job-centre effect of a random citizen."""
    if population is None:
        var_log = config.caseworker_sd**2 + config.jobcentre_sd**2
        return 1.0, float(np.exp(var_log))
    cw = np.arange(config.n_caseworkers)
    effect = (
        population.caseworker_effect[cw] * population.jobcentre_effect[cw % config.n_jobcentres]
    )
    return float(effect.mean()), float((effect**2).mean())


def _prior_grid(
    config: SimulationConfig, population: PopulationModel | None
) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Laguerre nodes and weights of the unobserved factor frailty x caseworker effect."""
    mean_c, second_c = _effect_moments(config, population)
    second = (1.0 + config.frailty_variance) * second_c
    var = second - mean_c**2
    if var <= 1e-12:  # noqa: PLR2004
        return np.array([mean_c]), np.array([1.0])
    shape, scale = mean_c**2 / var, var / mean_c
    x, w = roots_genlaguerre(FINE_NODES, shape - 1.0)
    return x * scale, w / w.sum()


def _gauss_rule(
    values: np.ndarray, weights: np.ndarray, n_nodes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Compress discrete distributions ``(m, F)`` to ``n_nodes``-point Gauss rules ``(m, J)``.

    The rule has the first ``2 n_nodes`` moments of each distribution (Golub-Welsch via the
    monic orthogonal polynomial from the Hankel moment system).
    """
    total = weights.sum(axis=1, keepdims=True)
    mass = weights / total
    centre = (mass * values).sum(axis=1, keepdims=True)
    if n_nodes == 1:
        return centre, total
    y = values / centre
    moments = np.stack([(mass * y**r).sum(axis=1) for r in range(2 * n_nodes)], axis=1)
    hankel = np.stack([moments[:, r : r + n_nodes] for r in range(n_nodes)], axis=1)  # (m, J, J)
    rhs = -moments[:, n_nodes : 2 * n_nodes]
    ridge = 1e-12 * np.eye(n_nodes)
    coef = np.linalg.solve(hankel + ridge, rhs[..., None])[..., 0]  # c_0..c_{J-1}
    companion = np.zeros((len(y), n_nodes, n_nodes))
    companion[:, 1:, :-1] = np.eye(n_nodes - 1)
    companion[:, :, -1] = -coef
    roots = np.sort(np.linalg.eigvals(companion).real, axis=1)
    vander = np.stack([roots**r for r in range(n_nodes)], axis=1)  # (m, J, J)
    w = np.linalg.solve(vander, moments[:, :n_nodes, None])[..., 0]
    return roots * centre, w * total


def _survival(config: SimulationConfig, cohort: Cohort, rate: np.ndarray) -> np.ndarray:
    """P(no job exit before the decision) at each baseline ``rate`` (n, ...), without ``q``.

    Citizens with the same decision spell week and entry week share the seasonal path, so
    they are processed together.
    """
    out = np.ones_like(rate)
    keys = np.stack([cohort.decision_spell_week, cohort.entry_week], axis=1)
    for d, entry in np.unique(keys, axis=0):
        if d == 0:
            continue
        rows = np.flatnonzero((keys[:, 0] == d) & (keys[:, 1] == entry))
        season = seasonal_factor(config, entry + np.arange(d))
        part = rate[rows]
        stay = np.ones_like(part)
        for factor in season:
            stay *= 1.0 - np.minimum(part * factor, 1.0)
        out[rows] = stay
    return out


def latent_posterior(
    config: SimulationConfig,
    cohort: Cohort,
    *,
    population: PopulationModel | None = None,
    nodes: int = OBS_NODES,
) -> LatentPosterior:
    """Posterior quadrature of the unobservables given the observed facts and survival to ``d``.

    Raises
    ------
    ValueError
        When the target groups' type mixtures differ in length.
    """
    n_types = {len(config.types[g].shares) for g in GROUPS}
    if len(n_types) != 1:
        msg = "Expected type mixtures of equal length for the observable truth"
        raise ValueError(msg)
    group = cohort.group.astype(int)
    shares = np.array([config.types[g].shares for g in GROUPS])[group]  # (n, T)
    type_h = np.array([config.types[g].hazards for g in GROUPS])[group]
    norm = np.array([expected_covariate_multiplier(g) for g in range(len(GROUPS))])
    known = (
        observed_covariate_multiplier(
            cohort.age, cohort.education, cohort.history_weeks, cohort.health, cohort.demand
        )
        / norm[group]
        * np.asarray(config.hazard_scale)[group]
        * config.business_cycle
    )
    # Origin | proficiency, group (Bayes); only non-Western shifts the hazard.
    joint = np.asarray(ORIGIN_PROBS)[group] * PROFICIENCY_PROBS[:, cohort.proficiency].T
    p_nonwestern = joint[:, 2] / joint.sum(axis=1)
    u, w = _prior_grid(config, population)
    values = np.concatenate([u, MULT_NON_WESTERN * u])  # (2F,)
    prior = np.concatenate(
        [(1.0 - p_nonwestern)[:, None] * w[None, :], p_nonwestern[:, None] * w[None, :]], axis=1
    )  # (n, 2F)
    weight = shares[:, :, None] * prior[:, None, :]  # (n, T, 2F)
    weight *= _survival(config, cohort, known[:, None, None] * type_h[:, :, None] * values)
    n, t_count, f_count = weight.shape
    flat_w = weight.reshape(n * t_count, f_count)
    flat_v = np.broadcast_to(values, flat_w.shape)
    has_mass = flat_w.sum(axis=1) > 0
    flat_w = np.where(has_mass[:, None], flat_w, 1e-300)
    if len(values) == 1:
        nodes = 1
    node_v, node_w = _gauss_rule(flat_v, flat_w, nodes)
    node_w = node_w.reshape(n, t_count, nodes)
    node_w = node_w / node_w.sum(axis=(1, 2), keepdims=True)
    return LatentPosterior(
        known=known,
        type_hazard=type_h,
        nodes=node_v.reshape(n, t_count, nodes),
        weights=node_w,
    )


def _with_latent(cohort: Cohort, position: int, n_types: int, hazard: np.ndarray) -> Cohort:
    fields = {name: getattr(cohort, name) for name in cohort.__slots__}
    fields["type_index"] = np.full(len(cohort), position)
    fields["slow_type"] = np.full(len(cohort), position == n_types - 1)
    fields["hazard"] = hazard
    return Cohort(**fields)


def observable_truth(
    config: SimulationConfig,
    cohort: Cohort,
    effects: ArmEffects,
    *,
    week: int,
    population: PopulationModel | None = None,
    nodes: int = OBS_NODES,
    observable_effects: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """``p_obs = E[P(job within H) | observed]`` for every citizen and action, shape ``(n, K)``.

    Parameters
    ----------
    config, cohort, effects
        The simulation, the decision cohort (decided in calendar ``week``) and the actions.
    population
        The population model whose realised caseworker and job-centre effects are integrated;
        their log-normal law is used when omitted.
    nodes
        Gauss nodes per citizen and latent type (:data:`OBS_NODES`; 3 for about 5x less
        quadrature error at 1.5x the cost).
    observable_effects
        Precomputed :func:`~simulator.outcomes.observable_log_effects`.

    Examples
    --------
    >>> from bandit.catalog import default_catalog
    >>> from simulator.outcomes import arm_effects, select_arms
    >>> cfg, cat = SimulationConfig(), default_catalog()
    >>> eff = arm_effects(cfg, cat, select_arms(cat, 1), seed=0)
    >>> pop = PopulationModel(cfg, seed=0)
    >>> c = pop.draw(np.random.default_rng(0), n_dagpenge=4, n_kontanthjaelp=2)
    >>> p = observable_truth(cfg, c, eff, week=0, population=pop)
    >>> p.shape, bool(((p > 0) & (p < 1)).all())
    ((6, 11), True)
    """
    post = latent_posterior(config, cohort, population=population, nodes=nodes)
    b_lock, b_post = observable_effects or observable_log_effects(config, cohort, effects)
    n_types = post.type_hazard.shape[1]
    post_t, lock_t = type_scales(n_types, effects)
    h, q = config.horizon_weeks, config.non_employment(cohort.group)
    season = seasonal_factor(config, week + np.arange(h))
    slow = needs_exhaustion(config, cohort)
    schedule = phase_schedule(effects, h)
    out = np.zeros((len(cohort), len(effects.arms)))
    for t in range(n_types):
        e_lock = np.exp((b_lock * lock_t[t]).astype(np.float32))
        e_post = np.exp((b_post * post_t[t]).astype(np.float32))
        for j in range(post.nodes.shape[2]):
            hazard = post.known * post.type_hazard[:, t] * post.nodes[:, t, j]
            if slow:
                g = hazard_paths(
                    config,
                    _with_latent(cohort, t, n_types, hazard),
                    effects,
                    decision_week=week,
                    n_weeks=h,
                )
                p = job_probability(g, q, h)
            else:
                p, _ = job_and_benefit(
                    hazard, season, e_lock, e_post, effects, q, schedule=schedule
                )
            out += post.weights[:, t, j, None] * p
    return out

"""The outcome model: programme effects, weekly hazard paths and exact ground truth.

For citizen ``i`` and action ``k`` decided in calendar week ``w`` at spell week ``d``, the job
hazard in week ``t`` after the decision is

``g[i, k, t] = min(1, h_i * season(w + t) * m[i, k, t])``

where ``m`` is the lock-in multiplier during the programme, the post-programme multiplier for
the family's effect duration, and 1 afterwards (domain.md 5.2, with the heterogeneity rule:
the fast type gets ``beta_post * 0.5`` and ``beta_lock * 1.5``, the slow type ``beta_post * 1.5``
and ``beta_lock * 0.5``, times the observable factors of :mod:`simulator.heterogeneity`;
see :func:`citizen_log_effects`). A wage subsidy adds the probability of being hired by the employer in
the week it ends. Within a week a job comes first, then the non-employment exit ``q``;
dagpenge ends (exhaustion) at spell week 104. Hence, exactly,

``P(job within H) = sum_{t<H} S_t g_t`` with ``S_0 = 1``, ``S_{t+1} = S_t (1-g_t)(1-q)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bandit.catalog import Catalog, Family, Intervention
from bandit.context import TargetGroup
from simulator.config import EXHAUSTION_WEEK, SimulationConfig
from simulator.heterogeneity import (
    EMPLOYER_FAMILIES,
    FAMILIES,
    clip_factor,
    family_factors,
    sector_factors,
)
from simulator.population import SECTORS, Cohort, seasonal_factor

_FAST_POST, _FAST_LOCK = 0.5, 1.5
_SLOW_POST, _SLOW_LOCK = 1.5, 0.5
MEETINGS_MEDIUM_TYPE = 1.5
"""[assumption] Intensified meetings: log effects x1.5 for the medium latent type (domain.md
5.2: "bigger for the medium type"), on top of the fast/slow rule."""


def select_arms(catalog: Catalog, offers_per_family: int) -> tuple[Intervention, ...]:
    """The replay's action set: the whole catalog (0) or the first n offers of each family.

    Examples
    --------
    >>> from bandit.catalog import default_catalog
    >>> arms = select_arms(default_catalog(), 1)
    >>> len(arms), arms[0].family.value
    (11, 'standard_contact')
    >>> len(select_arms(default_catalog(), 0))
    330
    """
    if offers_per_family == 0:
        return tuple(catalog)
    out: list[Intervention] = []
    for family in catalog.families():
        out.extend([item for item in catalog if item.family is family][:offers_per_family])
    return tuple(out)


def weekly_seats(
    config: SimulationConfig, catalog: Catalog, arms: Sequence[Intervention]
) -> np.ndarray:
    """Seats per week of each action, shape ``(K,)``; ``inf`` when unlimited or capacity off.

    An offer's seats are its catalog capacity x ``capacity_scale`` x ``scale`` (at least 1).
    When ``offers_per_family`` keeps n < all offers of a family, each kept offer stands for its
    whole family's seats: capacity x (family size / n).

    Examples
    --------
    >>> from bandit.catalog import default_catalog
    >>> cat = default_catalog()
    >>> seats = weekly_seats(SimulationConfig(capacity_scale=0.01), cat, select_arms(cat, 1))
    >>> bool(np.isinf(seats[0])), bool(np.isfinite(seats[1]))
    (True, True)
    >>> seats = weekly_seats(SimulationConfig(), cat, select_arms(cat, 0))
    >>> int(seats[1]) == cat[1].capacity
    True
    """
    out = np.full(len(arms), np.inf)
    if config.capacity_scale <= 0:
        return out
    sizes = {f: sum(1 for item in catalog if item.family is f) for f in catalog.families()}
    for k, arm in enumerate(arms):
        if arm.capacity is None:
            continue
        size = sizes.get(arm.family, 1)
        kept = size if config.offers_per_family == 0 else min(config.offers_per_family, size)
        share = size / kept
        out[k] = max(1.0, round(arm.capacity * share * config.capacity_scale * config.scale))
    return out


@dataclass(frozen=True, slots=True)
class ArmEffects:
    """True effects of the actions in an action set, arrays of shape ``(K,)``.

    ``family_index`` indexes :data:`simulator.heterogeneity.FAMILIES`; ``sector`` indexes
    :data:`simulator.population.SECTORS` (-1: any sector); ``employer`` marks employer
    programmes (sector match matters).
    """

    arms: tuple[Intervention, ...]
    family: tuple[Family, ...]
    length: np.ndarray
    beta_lock: np.ndarray
    beta_post: np.ndarray
    beta_post_kh: np.ndarray
    after_weeks: np.ndarray
    hire: np.ndarray
    family_index: np.ndarray
    sector: np.ndarray
    employer: np.ndarray

    @property
    def ids(self) -> tuple[str, ...]:
        """Action ids in order."""
        return tuple(a.id for a in self.arms)


def _sector_index(sector: str) -> int:
    names = [s.value for s in SECTORS]
    return names.index(sector) if sector in names else -1


def arm_effects(
    config: SimulationConfig, catalog: Catalog, arms: Sequence[Intervention], *, seed: int
) -> ArmEffects:
    """Each offer's own true effect, drawn around its family (log-scale sd ``offer_effect_sd``).

    Draws are made for the whole catalog in catalog order, so an offer's effect does not depend
    on which action subset is used. The standard contact is the baseline (exactly 1).
    """
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, config.offer_effect_sd, size=(len(catalog), 2))
    lock, post, post_kh, weeks, hire, length = [], [], [], [], [], []
    for item in arms:
        eff = config.family_effects[item.family]
        e_lock, e_post = noise[catalog.index_of(item.id)]
        if item.family is Family.STANDARD_CONTACT:
            e_lock = e_post = 0.0
        lock.append(np.log(eff.during) + e_lock)
        post.append(np.log(eff.after) + e_post)
        kh = eff.after if eff.after_kontanthjaelp is None else eff.after_kontanthjaelp
        post_kh.append(np.log(kh) + e_post)
        weeks.append(eff.after_weeks)
        hire.append(eff.hire_probability)
        length.append(item.length_weeks)
    return ArmEffects(
        arms=tuple(arms),
        family=tuple(a.family for a in arms),
        length=np.asarray(length, dtype=int),
        beta_lock=np.asarray(lock, dtype=float),
        beta_post=np.asarray(post, dtype=float),
        beta_post_kh=np.asarray(post_kh, dtype=float),
        after_weeks=np.asarray(weeks, dtype=int),
        hire=np.asarray(hire, dtype=float),
        family_index=np.asarray([FAMILIES.index(a.family) for a in arms], dtype=int),
        sector=np.asarray([_sector_index(a.sector) for a in arms], dtype=int),
        employer=np.asarray([a.family in EMPLOYER_FAMILIES for a in arms], dtype=bool),
    )


def type_scales(n_types: int, effects: ArmEffects) -> tuple[np.ndarray, np.ndarray]:
    """Latent-type scales of ``beta_post`` and ``beta_lock``, each of shape ``(n_types, K)``.

    domain.md 5.2 rule: the fast type (index 0) gets ``beta_post x 0.5`` and
    ``beta_lock x 1.5``, the slow type (last index) ``x 1.5`` and ``x 0.5``; intensified
    meetings get :data:`MEETINGS_MEDIUM_TYPE` for the medium type(s).
    """
    post = np.ones((n_types, len(effects.arms)))
    lock = np.ones((n_types, len(effects.arms)))
    meetings = np.asarray([f is Family.INDIVIDUAL_MEETINGS for f in effects.family])
    post[1:-1, meetings] = lock[1:-1, meetings] = MEETINGS_MEDIUM_TYPE
    post[0], lock[0] = _FAST_POST, _FAST_LOCK
    post[-1], lock[-1] = _SLOW_POST, _SLOW_LOCK
    return post, lock


def observable_log_effects(
    config: SimulationConfig, cohort: Cohort, effects: ArmEffects
) -> tuple[np.ndarray, np.ndarray]:
    """Log lock-in and post effects before the latent-type scale, each of shape ``(n, K)``.

    The offer's own effect (kontanthjælp post effect where it differs) times the observable
    family factors and the sector match of :mod:`simulator.heterogeneity`.
    """
    strength = config.heterogeneity
    post_f, lock_f = family_factors(cohort, strength=strength, business_cycle=config.business_cycle)
    is_kh = (cohort.group == 1)[:, None]
    b_post = np.where(is_kh, effects.beta_post_kh[None, :], effects.beta_post[None, :])
    factor = post_f[:, effects.family_index]
    if strength > 0:
        factor *= sector_factors(cohort, effects.sector, effects.employer, strength=strength)
    b_post = b_post * clip_factor(factor)
    b_lock = effects.beta_lock[None, :] * clip_factor(lock_f[:, effects.family_index])
    return b_lock, b_post


def citizen_log_effects(
    config: SimulationConfig,
    cohort: Cohort,
    effects: ArmEffects,
    *,
    observable: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """TRUE log lock-in and post effects of every citizen and action, each ``(n, K)``.

    :func:`observable_log_effects` (or the precomputed ``observable``) times the citizen's
    latent-type scale.
    """
    b_lock, b_post = observable or observable_log_effects(config, cohort, effects)
    n_types = int(max(len(m.shares) for m in config.types.values()))
    post_t, lock_t = type_scales(n_types, effects)
    position = np.where(cohort.slow_type, n_types - 1, cohort.type_index)
    return b_lock * lock_t[position], b_post * post_t[position]


def hazard_paths(
    config: SimulationConfig,
    cohort: Cohort,
    effects: ArmEffects,
    *,
    decision_week: int | np.ndarray,
    n_weeks: int,
    actions: np.ndarray | None = None,
    log_effects: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Weekly job probabilities ``g``, shape ``(n, K, n_weeks)``, for every citizen and action.

    Includes lock-in, post-programme effects, heterogeneity, seasonality, the wage-subsidy hire
    at the programme's end and the dagpenge exhaustion (``g`` is 0 from spell week 104 on; the
    survival helpers then stop the spell).

    Parameters
    ----------
    actions
        Optional action index per citizen, shape ``(n,)``: then only ``g[i, actions[i]]`` is
        computed and the result has shape ``(n, n_weeks)`` (what outcome sampling needs).
    log_effects
        Precomputed :func:`citizen_log_effects` (``b_lock``, ``b_post``), to save work.
    """
    t = np.arange(n_weeks)
    calendar = np.asarray(decision_week).reshape(-1, 1) + t[None, :]
    base = cohort.hazard[:, None] * seasonal_factor(config, calendar)  # (n, T)
    b_lock, b_post = log_effects or citizen_log_effects(config, cohort, effects)  # (n, K)
    length = effects.length[None, :, None]  # (1, K, 1)
    after_weeks = effects.after_weeks[None, :, None]
    hire = effects.hire[None, :, None]
    if actions is not None:
        rows = np.arange(len(cohort))
        b_lock = b_lock[rows, actions][:, None]
        b_post = b_post[rows, actions][:, None]
        length = effects.length[actions][:, None, None]  # (n, 1, 1)
        after_weeks = effects.after_weeks[actions][:, None, None]
        hire = effects.hire[actions][:, None, None]
    tt = t[None, None, :]
    during = tt < length
    after = (tt >= length) & (tt < length + after_weeks)
    log_m = during * b_lock[:, :, None] + after * b_post[:, :, None]
    g = np.minimum(base[:, None, :] * np.exp(log_m), 1.0)
    g = 1.0 - (1.0 - g) * (1.0 - (tt == length) * hire)
    spell_week = cohort.decision_spell_week[:, None] + t[None, :]
    if config.exhaustion_spike != 1.0:
        spike = (spell_week >= EXHAUSTION_WEEK - 9) & (spell_week < EXHAUSTION_WEEK)
        g = np.minimum(g * np.where(spike, config.exhaustion_spike, 1.0)[:, None, :], 1.0)
    exhausted = (spell_week >= EXHAUSTION_WEEK) & (cohort.group == 0)[:, None]
    result: np.ndarray = np.where(exhausted[:, None, :], 0.0, g)
    return result[:, 0, :] if actions is not None else result


Rate = float | np.ndarray
"""A weekly exit probability: one number, or one per citizen (shape ``(n,)``, the first axis
of the hazard paths it is used with)."""


def per_row(q: Rate, ndim: int) -> float | np.ndarray:
    """``q`` shaped to broadcast against an array of ``ndim`` dims whose first axis is citizens.

    Examples
    --------
    >>> per_row(np.array([0.1, 0.2]), 3).shape
    (2, 1, 1)
    >>> per_row(0.5, 3)
    0.5
    """
    if np.ndim(q) == 0:
        return float(q)
    arr = np.asarray(q, dtype=float)
    return arr.reshape(arr.shape[0], *([1] * (ndim - 1)))


def survival_before(g: np.ndarray, q: Rate, stopped: np.ndarray | None = None) -> np.ndarray:
    """``S_t`` = P(still on benefit at the start of week t), same shape as ``g``.

    ``q`` is the weekly non-employment exit, one number or one per citizen (first axis).
    ``stopped`` (broadcastable to ``g``) marks weeks in which the spell has ended for
    administrative reasons (exhaustion); survival is 0 from then on.
    """
    stay = (1.0 - g) * (1.0 - per_row(q, g.ndim))
    surv = np.cumprod(stay, axis=-1)
    out = np.concatenate([np.ones_like(g[..., :1]), surv[..., :-1]], axis=-1)
    if stopped is not None:
        out = np.where(np.cumsum(stopped, axis=-1) > 0, 0.0, out)
    return out


def job_probability(g: np.ndarray, q: Rate, horizon: int) -> np.ndarray:
    """Exact P(job within ``horizon`` weeks): ``sum_{t<H} S_t g_t`` over the last axis.

    Examples
    --------
    >>> g = np.full((1, 3), 0.5)
    >>> round(float(job_probability(g, 0.0, 3)[0]), 4)  # 1 - 0.5**3
    0.875
    """
    gh = g[..., :horizon]
    prob: np.ndarray = (survival_before(gh, q) * gh).sum(axis=-1)
    return prob


def expected_benefit_weeks(g: np.ndarray, q: Rate, horizon: int) -> np.ndarray:
    """Exact expected weeks on benefit within the horizon: ``sum_{t<H} S_t``."""
    weeks: np.ndarray = survival_before(g[..., :horizon], q).sum(axis=-1)
    return weeks


@dataclass(frozen=True, slots=True)
class Realised:
    """Sampled outcome of each citizen for its assigned action, arrays of shape ``(n,)``.

    ``job_week`` is the week index after the decision in which a job starts (-1 if none within
    the horizon); ``benefit_weeks`` counts weeks started on benefit within the horizon.
    """

    job_week: np.ndarray
    benefit_weeks: np.ndarray
    employed: np.ndarray
    exited: np.ndarray


def sample_outcomes(
    g_assigned: np.ndarray, q: Rate, horizon: int, rng: np.random.Generator
) -> Realised:
    """Draw job and non-employment exits week by week for ``g_assigned`` of shape ``(n, T)``.

    ``q`` is the weekly non-employment exit, one number or one per citizen.
    """
    gh = g_assigned[:, :horizon]
    n, t_max = gh.shape
    job = rng.random((n, t_max)) < gh
    drop = rng.random((n, t_max)) < per_row(q, 2)
    exit_any = job | drop
    has_exit: np.ndarray = np.asarray(exit_any.any(axis=1))
    first = np.where(has_exit, exit_any.argmax(axis=1), t_max)
    rows = np.arange(n)
    got_job = has_exit & job[rows, np.minimum(first, t_max - 1)]
    job_week = np.where(got_job, first, -1)
    benefit_weeks = np.where(has_exit, first + 1, t_max)
    return Realised(
        job_week=job_week, benefit_weeks=benefit_weeks, employed=got_job, exited=has_exit
    )


def benefit_dkk_per_week(cohort: Cohort) -> np.ndarray:
    """Weekly benefit in DKK (360/320 DKK a day, 5 days a week)."""
    from bandit.rewards import BENEFIT_DAYS_PER_WEEK, BENEFIT_DKK_PER_DAY

    rates = np.array(
        [
            BENEFIT_DKK_PER_DAY[TargetGroup.DAGPENGE],
            BENEFIT_DKK_PER_DAY[TargetGroup.KONTANTHJAELP],
        ]
    )
    weekly: np.ndarray = rates[cohort.group.astype(int)] * BENEFIT_DAYS_PER_WEEK
    return weekly

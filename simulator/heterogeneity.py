"""Observable heterogeneity of programme effects (domain.md 5.2, per family).

On top of the latent-type rule (fast type ``beta_post x 0.5``, ``beta_lock x 1.5``; slow type
the reverse), each family's log effects are scaled per citizen by factors that depend only on
case facts the service sees (the model features of
:meth:`bandit.context.CitizenContext.features`):

``b_post[i, k] = beta_post[k] * type_post[type_i, k] * post_factor[i, family_k] * sector[i, k]``

``b_lock[i, k] = beta_lock[k] * type_lock[type_i, k] * lock_factor[i, family_k]``

A factor of 1 leaves the family's effect as in domain.md, 0 removes it and a negative factor
flips its sign (a helpful programme becomes harmful). Every number below is an
**[assumption]** chosen to express the qualitative statement of domain.md 5.2 that is quoted
next to it; none is an estimate. Indicators (all observable):

* ``ltu``: long-term unemployed, i.e. a long benefit history (52+ weeks in the last 3 years)
  or a decision at spell week 26+;
* ``low_edu``: no education beyond lower secondary; ``academic``: bachelor or master;
  ``master``: a long higher education;
* ``weak_danish``: basic or no Danish (the observable proxy of immigrant status);
* ``high_emp``: observably high employability: a higher education, local labour demand at
  least 1, no long-term unemployment and no health limitation;
* ``low_demand`` / ``high_demand``: vacancies per unemployed <= 0.8 / >= 1.5.
"""

from __future__ import annotations

import numpy as np

from bandit.catalog import Family
from simulator.population import LONG_HISTORY_WEEKS, Cohort

FAMILIES = tuple(Family)
"""Column order of the family factor matrices."""

LTU_SPELL_WEEKS = 26
EMPLOYER_FAMILIES = frozenset(
    {
        Family.PRIVATE_INTERNSHIP,
        Family.PUBLIC_INTERNSHIP,
        Family.PRIVATE_WAGE_SUBSIDY,
        Family.PUBLIC_WAGE_SUBSIDY,
    }
)
"""Programmes at an employer, whose post effect depends on the sector match."""

SECTOR_MATCH = 1.4
"""[assumption] Post-effect factor of an employer programme in the citizen's last sector (the
internship or subsidy builds contacts and experience that the citizen's job search can use;
BM 2016 attributes firm-based effects to employer contact)."""
SECTOR_MISMATCH = 0.8
"""[assumption] Post-effect factor of an employer programme in another sector; offers open to
any sector get 1."""

FACTOR_RANGE = (-1.5, 2.5)
"""[assumption] Range of a citizen's total observable factor on a log effect (family factor x
sector match): at most 2.5 times the family's log effect (domain.md's ranges within a family,
e.g. private praktik x1.2-1.8, on top of the latent-type rule), and at worst the effect
reversed and 1.5 times as large."""

PUBLIC_SUBSIDY_LONG_EDUCATED = float(np.log(1.3) / np.log(1.15))
"""domain.md 5.2 public løntilskud: after x1.3 for the long-educated, x1.0 for others, so the
family mid-point log(1.15) is scaled to log(1.3) for masters and to 0 for everyone else."""


def _indicators(cohort: Cohort, business_cycle: float) -> dict[str, np.ndarray]:
    edu = cohort.education
    ltu = (cohort.history_weeks >= LONG_HISTORY_WEEKS) | (
        cohort.decision_spell_week >= LTU_SPELL_WEEKS
    )
    higher = edu >= 3  # noqa: PLR2004  (short higher, bachelor, master)
    low_demand = cohort.demand <= 0.8  # noqa: PLR2004
    high_demand = cohort.demand >= 1.5  # noqa: PLR2004
    # [assumption] "cyclical" (wage subsidies) and "larger in recession" (6UJU): x1.4 in weak
    # local labour markets, x0.7 in strong ones, plus 1 per unit of national downturn.
    cyclical = np.clip(
        1.0 + 0.4 * low_demand - 0.3 * high_demand + 1.0 * (1.0 - business_cycle), 0.3, 2.0
    )
    return {
        "ltu": ltu.astype(float),
        "low_edu": (edu == 0).astype(float),
        "academic": (edu >= 4).astype(float),  # noqa: PLR2004
        "master": (edu == 5).astype(float),  # noqa: PLR2004
        "weak_danish": (cohort.proficiency >= 2).astype(float),  # noqa: PLR2004
        "high_emp": (higher & (cohort.demand >= 1.0) & ~ltu & ~cohort.health).astype(float),
        "kh": (cohort.group == 1).astype(float),
        "health": cohort.health.astype(float),
        "cyclical": cyclical,
    }


def _post_factors(x: dict[str, np.ndarray]) -> dict[Family, np.ndarray]:
    """Per-family post-programme factors (each entry shape ``(n,)``)."""
    one = np.ones_like(x["ltu"])
    return {
        # "bigger for the medium type; smaller for academics" (the medium-type part is latent,
        # see outcomes.type_scales).
        Family.INDIVIDUAL_MEETINGS: one - 0.6 * x["academic"],
        # "can be negative for high-employability people (Swiss basic courses)"; larger for
        # weak job seekers.
        Family.JOB_SEARCH_COURSE: one
        + 0.5 * x["ltu"]
        + 0.5 * x["low_edu"]
        + 0.3 * x["weak_danish"]
        - 2.0 * x["high_emp"],
        # "larger for low-employability, long-term unemployed and immigrants".
        Family.PRIVATE_INTERNSHIP: one
        + 0.8 * x["ltu"]
        + 0.5 * x["low_edu"]
        + 0.8 * x["weak_danish"]
        - 0.7 * x["academic"],
        # as private (same eligibility and basis), smaller contrasts.
        Family.PUBLIC_INTERNSHIP: one
        + 0.4 * x["ltu"]
        + 0.3 * x["low_edu"]
        + 0.4 * x["weak_danish"]
        - 0.5 * x["academic"],
        # "creaming (experienced people gain more), but low-educated and non-EU people also
        # gain; cyclical".
        Family.PRIVATE_WAGE_SUBSIDY: (
            one + 0.3 * (1.0 - x["ltu"]) + 0.3 * x["low_edu"] + 0.3 * x["weak_danish"]
        )
        * x["cyclical"],
        # "x1.3 for the long-educated, x1.0 for others".
        Family.PUBLIC_WAGE_SUBSIDY: PUBLIC_SUBSIDY_LONG_EDUCATED * x["master"] * x["cyclical"],
        # "larger in recession and for the long-term unemployed".
        Family.SIX_WEEK_COURSE: (one + 0.6 * x["ltu"] + 0.3 * x["low_edu"]) * x["cyclical"],
        # "the long-term unemployed gain more"; the brief adds low education, and training is
        # negative-ish for academics (a factor of -0.2 turns x1.12 into x0.98).
        Family.CLASSROOM_TRAINING: one + 0.6 * x["ltu"] + 0.6 * x["low_edu"] - 1.2 * x["academic"],
        # "mainly kontanthjælp and health-limited people".
        Family.MENTOR: 0.3 * one + 1.2 * x["kh"] + 1.2 * x["health"],
    }


def family_factors(
    cohort: Cohort, *, strength: float = 1.0, business_cycle: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Observable post and lock-in factors, each of shape ``(n, len(FAMILIES))``.

    Parameters
    ----------
    cohort
        The citizens (only observable fields are read).
    strength
        Scales every factor's deviation from 1 (0: no observable heterogeneity).
    business_cycle
        National multiplier of the job hazard (below 1: a downturn).

    Notes
    -----
    Lock-in factor [assumption], all families with a lock-in: ``1 + high_emp - 0.5 ltu``
    (domain.md 5.2 rule of thumb: lock-in hurts those who would have found a job anyway). The
    intensified meetings' "during" multiplier is a boost, not a lock-in, and gets the meetings'
    post factor instead. Families not listed keep 1.

    Examples
    --------
    >>> from simulator.config import SimulationConfig
    >>> from simulator.population import PopulationModel
    >>> c = PopulationModel(SimulationConfig(), seed=0).draw(
    ...     np.random.default_rng(0), n_dagpenge=5, n_kontanthjaelp=0)
    >>> post, lock = family_factors(c)
    >>> post.shape, bool((family_factors(c, strength=0.0)[0] == 1).all())
    ((5, 11), True)
    """
    x = _indicators(cohort, business_cycle)
    n = len(cohort)
    post = np.ones((n, len(FAMILIES)))
    lock = np.ones((n, len(FAMILIES)))
    generic_lock = np.maximum(1.0 + 1.0 * x["high_emp"] - 0.5 * x["ltu"], 0.0)
    for j, family in enumerate(FAMILIES):
        if family not in (Family.STANDARD_CONTACT, Family.GROUP_MEETINGS):
            lock[:, j] = generic_lock
    for family, factor in _post_factors(x).items():
        post[:, FAMILIES.index(family)] = factor
    meetings = FAMILIES.index(Family.INDIVIDUAL_MEETINGS)
    lock[:, meetings] = post[:, meetings]
    if strength != 1.0:
        post = 1.0 + strength * (post - 1.0)
        lock = 1.0 + strength * (lock - 1.0)
    return post, lock


def sector_factors(
    cohort: Cohort, arm_sector: np.ndarray, employer: np.ndarray, *, strength: float = 1.0
) -> np.ndarray:
    """Post-effect factor of the sector match, shape ``(n, K)``.

    Parameters
    ----------
    cohort
        The citizens (``sector`` indexes :data:`simulator.population.SECTORS`).
    arm_sector
        Sector index of each action, -1 for offers open to any sector, shape ``(K,)``.
    employer
        True for employer programmes (:data:`EMPLOYER_FAMILIES`), shape ``(K,)``.
    strength
        Scales the deviation from 1.
    """
    specific = (arm_sector >= 0) & employer
    match = cohort.sector[:, None] == arm_sector[None, :]
    factor = np.where(match, SECTOR_MATCH, SECTOR_MISMATCH)
    out: np.ndarray = np.where(specific[None, :], 1.0 + strength * (factor - 1.0), 1.0)
    return out


def clip_factor(factor: np.ndarray) -> np.ndarray:
    """Clip total observable factors to :data:`FACTOR_RANGE` (in place) and return them."""
    out: np.ndarray = np.clip(factor, *FACTOR_RANGE, out=factor)
    return out

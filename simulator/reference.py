"""Reference policies under weekly seat capacity, valued with the exact truth.

For one week's decision cohort (in arrival order) each reference policy is applied to
*everyone*: citizen after citizen, each gets the policy's best legally eligible action that
still has a seat this week, and takes one seat (seats are shared by all citizens of the week;
``inf`` = unlimited). The policies:

* ``oracle``: argmax of the full truth ``p_job`` (knows latent type, frailty, caseworker);
* ``observable_oracle``: argmax of ``p_obs`` = E[p_job | features] (the best any
  feature-based policy can do, per citizen);
* ``best_noncontextual``: one fixed priority order of actions for everyone
  (:func:`best_noncontextual_order`), the best a plain multi-armed bandit could find;
* ``practice``: the given practice-as-usual choices (not re-allocated);
* ``uniform``: uniform over the eligible actions with a seat (seeded);
* ``none``: the standard contact.

Each policy's value is ``p_job[i, choice]`` per citizen (TRUE P(job within H)).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from bandit.catalog import Catalog, Family, Intervention
from simulator.arrivals import PreparedCohort, draw_decision_cohort, prepare
from simulator.config import SimulationConfig
from simulator.outcomes import ArmEffects, weekly_seats
from simulator.population import PopulationModel

REFERENCE_POLICIES = (
    "oracle",
    "observable_oracle",
    "best_noncontextual",
    "practice",
    "uniform",
    "none",
)
CALIBRATION_WEEKS = tuple(range(0, 52, 4))
"""Calendar weeks of the calibration cohorts of :func:`best_noncontextual_order` (13 weeks
spread over a year, so seasonality averages out)."""


@dataclass(frozen=True, slots=True)
class Reference:
    """One reference policy's allocation: action index and TRUE value per citizen, ``(n,)``."""

    choice: np.ndarray
    value: np.ndarray


def _greedy(scores: np.ndarray, eligible: np.ndarray, seats: np.ndarray) -> np.ndarray:
    """Arrival-order greedy allocation of the highest-scoring eligible action with a seat."""
    left = np.array(seats, dtype=float)
    masked = np.where(eligible, scores, -np.inf)
    choice = np.empty(len(scores), dtype=int)
    for i in range(len(scores)):
        k = int(np.argmax(masked[i]))
        if left[k] < 1:
            k = int(np.argmax(np.where(left >= 1, masked[i], -np.inf)))
        choice[i] = k
        left[k] -= 1
    return choice


def _uniform(eligible: np.ndarray, seats: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    left = np.array(seats, dtype=float)
    choice = np.empty(eligible.shape[0], dtype=int)
    for i in range(eligible.shape[0]):
        idx = np.flatnonzero(eligible[i] & (left >= 1))
        choice[i] = k = int(idx[rng.integers(len(idx))])
        left[k] -= 1
    return choice


def _standard_contact(effects: ArmEffects) -> int:
    for k, family in enumerate(effects.family):
        if family is Family.STANDARD_CONTACT:
            return k
    msg = "The action set has no standard contact"
    raise ValueError(msg)


def reference_choices(
    prepared: PreparedCohort,
    seats: np.ndarray,
    practice_choice: np.ndarray,
    rng: np.random.Generator,
    order: np.ndarray,
    *,
    eligible: np.ndarray | None = None,
) -> dict[str, Reference]:
    """What each reference policy would give every citizen of the week, and its true value.

    Parameters
    ----------
    prepared
        The week's prepared cohort, citizens in arrival order.
    seats
        Seats per action at the start of the week, shape ``(K,)`` (``inf``: unlimited); e.g.
        :func:`simulator.outcomes.weekly_seats`. Not modified.
    practice_choice
        Practice-as-usual action index per citizen, shape ``(n,)``.
    rng
        Randomness of the ``uniform`` policy.
    order
        Priority order of ``best_noncontextual`` (:func:`best_noncontextual_order`): action
        indices, best first, shape ``(K,)``.
    eligible
        Legal eligibility, shape ``(n, K)``; defaults to ``prepared.eligible`` (pass a copy
        taken before the replay narrowed it by capacity).

    Returns
    -------
    dict[str, Reference]
        One entry per name in :data:`REFERENCE_POLICIES`.

    Examples
    --------
    >>> from bandit.catalog import default_catalog
    >>> from simulator.outcomes import arm_effects, select_arms
    >>> cfg, cat = SimulationConfig(scale=0.01), default_catalog()
    >>> arms = select_arms(cat, 1)
    >>> eff = arm_effects(cfg, cat, arms, seed=0)
    >>> pop = PopulationModel(cfg, seed=0)
    >>> rng = np.random.default_rng(0)
    >>> prep = prepare(cfg, draw_decision_cohort(cfg, pop, 0, rng), eff, week=0)
    >>> n = len(prep.cohort)
    >>> refs = reference_choices(prep, weekly_seats(cfg, cat, arms), np.zeros(n, int), rng,
    ...                          np.arange(len(arms)))
    >>> sorted(refs) == sorted(REFERENCE_POLICIES)
    True
    >>> bool(refs["oracle"].value.mean() >= refs["observable_oracle"].value.mean())
    True
    """
    legal = prepared.eligible if eligible is None else eligible
    seats = np.asarray(seats, dtype=float)
    n, k = legal.shape
    rank = np.empty(k)
    rank[np.asarray(order)] = -np.arange(k, dtype=float)  # higher = earlier in the order
    choices = {
        "oracle": _greedy(prepared.p_job, legal, seats),
        "observable_oracle": _greedy(prepared.p_obs, legal, seats),
        "best_noncontextual": _greedy(np.broadcast_to(rank, (n, k)), legal, seats),
        "practice": np.asarray(practice_choice, dtype=int),
        "uniform": _uniform(legal, seats, rng),
        "none": np.full(n, _standard_contact(prepared.effects)),
    }
    rows = np.arange(n)
    return {name: Reference(choice=c, value=prepared.p_job[rows, c]) for name, c in choices.items()}


def _allocation_value(
    prepared: Sequence[PreparedCohort], seats: np.ndarray, order: np.ndarray
) -> float:
    k = len(order)
    rank = np.empty(k)
    rank[order] = -np.arange(k, dtype=float)
    total, count = 0.0, 0
    for prep in prepared:
        n = len(prep.cohort)
        choice = _greedy(np.broadcast_to(rank, (n, k)), prep.eligible, seats)
        total += float(prep.p_obs[np.arange(n), choice].sum())
        count += n
    return total / max(count, 1)


def best_noncontextual_order(
    config: SimulationConfig,
    catalog: Catalog,
    arms: Sequence[Intervention],
    effects: ArmEffects,
    seed: int,
    *,
    weeks: Sequence[int] = CALIBRATION_WEEKS,
) -> np.ndarray:
    """The best fixed priority order of actions we can compute from the truth, shape ``(K,)``.

    Method: draw calibration decision cohorts in ``weeks`` (their own population and seed,
    at the config's scale and capacity), rank actions by two population statistics of
    ``p_obs`` -- (a) the mean gain over the standard contact among the citizens eligible for
    the action, (b) the mean ``p_obs`` among them -- and keep the order whose capacity-
    constrained greedy allocation (the one :func:`reference_choices` makes) has the higher mean
    ``p_obs`` on the calibration cohorts. A fixed order is all a context-free bandit can learn;
    optimising it over all K! orders is out of reach, so this is a strong, documented
    heuristic rather than the exact optimum.

    Examples
    --------
    >>> from bandit.catalog import default_catalog
    >>> from simulator.outcomes import arm_effects, select_arms
    >>> cfg, cat = SimulationConfig(scale=0.02), default_catalog()
    >>> arms = select_arms(cat, 1)
    >>> order = best_noncontextual_order(cfg, cat, arms, arm_effects(cfg, cat, arms, seed=0),
    ...                                  seed=0, weeks=(0, 26))
    >>> sorted(order.tolist()) == list(range(len(arms)))
    True
    """
    population = PopulationModel(config, seed=seed + 7919)
    rng = np.random.default_rng(seed + 7919)
    prepared = []
    for week in weeks:
        cohort = draw_decision_cohort(config, population, week, rng)
        if len(cohort):
            prepared.append(prepare(config, cohort, effects, week=week, population=population))
    base = _standard_contact(effects)
    k = len(arms)
    gain, level, count = np.zeros(k), np.zeros(k), np.zeros(k)
    for prep in prepared:
        elig = prep.eligible
        gain += np.where(elig, prep.p_obs - prep.p_obs[:, [base]], 0.0).sum(axis=0)
        level += np.where(elig, prep.p_obs, 0.0).sum(axis=0)
        count += elig.sum(axis=0)
    safe = np.maximum(count, 1)
    candidates = [np.argsort(-(s / safe), kind="stable") for s in (gain, level)]
    seats = weekly_seats(config, catalog, arms)
    values = [_allocation_value(prepared, seats, order) for order in candidates]
    best: np.ndarray = candidates[int(np.argmax(values))]
    return best


def mean_values(references: Mapping[str, Reference]) -> dict[str, float]:
    """Mean TRUE value of each reference policy (a convenience for reports)."""
    return {name: float(ref.value.mean()) for name, ref in references.items()}

"""Calibration check: simulated moments of the no-intervention spell vs the targets (5.1).

Two numbers per moment: ``exact`` is the population average of each citizen's exact value
(from the hazard path, no Monte Carlo); ``simulated`` comes from spells sampled week by week
with the same random draws the replay uses, so a bug in either path shows up as a gap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.config import EXHAUSTION_WEEK, SimulationConfig
from simulator.outcomes import sample_outcomes, survival_before
from simulator.population import Cohort, PopulationModel, seasonal_factor


@dataclass(frozen=True, slots=True)
class Moment:
    """One calibration moment with its target and tolerance."""

    group: str
    name: str
    target: float
    tolerance: float
    exact: float
    simulated: float | None

    @property
    def ok(self) -> bool:
        """True when the exact and (if any) simulated values are within tolerance."""
        values = [self.exact] if self.simulated is None else [self.exact, self.simulated]
        return all(abs(v - self.target) <= self.tolerance for v in values)


# (group, moment, target, tolerance). Targets from domain.md 5.1 (project figures where given).
# Employment at week 26 (dagpenge 0.69): the 5.1 table's mixture with q = 0.008 gives 0.80, not
# 0.69, so the table's numbers cannot all hold with that q. We keep every target at its normal
# tolerance and let the dagpenge non-employment exit q carry the difference (0.022 a week, with
# the job hazard scaled by 0.88 so the on-benefit moments stay): see docs/decisions.md.
TARGETS: tuple[tuple[str, str, float, float], ...] = (
    ("dagpenge", "mean_completed_spell_weeks", 9.4, 1.0),
    ("dagpenge", "on_benefit_week_13", 0.20, 0.04),
    ("dagpenge", "on_benefit_week_26", 0.10, 0.03),
    ("dagpenge", "on_benefit_week_52", 0.04, 0.02),
    ("dagpenge", "employed_week_26", 0.69, 0.03),
    ("kontanthjaelp", "mean_completed_spell_weeks", 26.4, 3.0),
    ("kontanthjaelp", "on_benefit_week_13", 0.59, 0.05),
    ("kontanthjaelp", "on_benefit_week_26", 0.40, 0.05),
    ("kontanthjaelp", "on_benefit_week_52", 0.22, 0.04),
    ("kontanthjaelp", "employed_week_26", 0.38, 0.03),
)
_GROUP_INDEX = {"dagpenge": 0, "kontanthjaelp": 1}


def _baseline_g(config: SimulationConfig, cohort: Cohort) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(EXHAUSTION_WEEK)
    calendar = cohort.entry_week[:, None] + t[None, :]
    g = np.minimum(cohort.hazard[:, None] * seasonal_factor(config, calendar), 1.0)
    stopped = (t[None, :] >= EXHAUSTION_WEEK) & (cohort.group == 0)[:, None]
    return g, stopped


def _employed_at(g: np.ndarray, q: np.ndarray, sigma: np.ndarray, week: int) -> np.ndarray:
    """P(in a job at ``week``): unemployed -> job (g), -> out (q); job -> unemployed (sigma)."""
    u = np.ones(g.shape[0])
    e = np.zeros(g.shape[0])
    for t in range(week):
        u, e = u * (1 - g[:, t]) * (1 - q) + e * sigma, e * (1 - sigma) + u * g[:, t]
    return e


def _group_moments(
    config: SimulationConfig, cohort: Cohort, rng: np.random.Generator
) -> dict[str, tuple[float, float | None]]:
    q = config.non_employment(cohort.group)
    g, stopped = _baseline_g(config, cohort)
    surv = survival_before(g, q, stopped)
    last = surv[:, -1:] * (1.0 - g[:, -1:]) * (1.0 - q[:, None])  # still on benefit after week 104
    surv_end = np.concatenate([surv[:, 1:], last], axis=1)
    p_exit = surv - surv_end  # exit during week t (0-based), within 104 weeks
    weeks = np.arange(1, g.shape[1] + 1)
    mean_exact = float((p_exit * weeks).sum() / p_exit.sum())
    realised = sample_outcomes(g, q, EXHAUSTION_WEEK, rng)
    completed = realised.benefit_weeks[realised.exited]
    out: dict[str, tuple[float, float | None]] = {
        "mean_completed_spell_weeks": (mean_exact, float(completed.mean()))
    }
    for week in (13, 26, 52):
        out[f"on_benefit_week_{week}"] = (
            float(surv[:, week].mean()),
            float((realised.benefit_weeks > week).mean()),
        )
    sigma = np.where(cohort.group == 0, config.separation_dagpenge, config.separation_kontanthjaelp)
    out["employed_week_26"] = (float(_employed_at(g, q, sigma, 26).mean()), None)
    return out


def calibration_moments(
    config: SimulationConfig | None = None, *, n_per_group: int = 20_000, seed: int = 0
) -> list[Moment]:
    """Moments of the no-intervention spell for each target group vs :data:`TARGETS`.

    Examples
    --------
    >>> moments = calibration_moments(n_per_group=2000, seed=1)
    >>> len(moments), moments[0].name
    (10, 'mean_completed_spell_weeks')
    """
    config = config or SimulationConfig()
    rng = np.random.default_rng(seed)
    population = PopulationModel(config, seed=seed)
    results: dict[str, dict[str, tuple[float, float | None]]] = {}
    for group, g in _GROUP_INDEX.items():
        sizes = {"n_dagpenge": n_per_group if g == 0 else 0}
        sizes["n_kontanthjaelp"] = n_per_group if g == 1 else 0
        cohort = population.draw(rng, **sizes)
        entry = rng.integers(0, 52, len(cohort))
        cohort = Cohort(
            **{**{k: getattr(cohort, k) for k in cohort.__slots__}, "entry_week": entry}
        )
        results[group] = _group_moments(config, cohort, rng)
    return [
        Moment(group, name, target, tol, *results[group][name])
        for group, name, target, tol in TARGETS
    ]

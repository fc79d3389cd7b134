"""Online replay: the full decision loop week by week with delayed outcomes.

Each simulated week: (1) outcomes that have become known by now are fed to the policy
(``Policy.learn``, complied treatment events only, with the logged propensity); (2) the week's
decision cohort arrives; each citizen is assigned to treatment or control by
:class:`bandit.control.ExperimentConfig` on the pseudonym; treatment gets a recommendation,
which the caseworker follows with probability ``compliance`` (otherwise practice as usual);
control gets practice as usual; (3) outcomes are drawn from the hazard path of the assigned
action. A job found in week ``t`` after the decision is known at week ``t + 1`` (+ lag); no
job is known at the horizon ``H`` (+ lag). The policy never sees an outcome earlier.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bandit.catalog import Catalog, Intervention, default_catalog
from bandit.context import age_band
from bandit.control import ExperimentConfig, Group
from bandit.policies import Policy
from bandit.policies.practice import PracticeAsUsualPolicy
from bandit.privacy import pseudonymise
from bandit.types import Action, Decision
from simulator.arrivals import PreparedCohort, draw_decision_cohort, prepare
from simulator.config import SimulationConfig
from simulator.outcomes import (
    ArmEffects,
    arm_effects,
    benefit_dkk_per_week,
    sample_outcomes,
    select_arms,
)
from simulator.policies import OraclePolicy
from simulator.population import GENDERS, ORIGINS, PopulationModel

SIM_PSEUDONYM_KEY = b"nbi-simulator-pseudonym-key"
SIM_EXPERIMENT_SALT = b"nbi-simulator-experiment-salt"
_NO_ACTION = -1


@dataclass(slots=True)
class _Pending:
    decision: Decision
    reward: float
    decision_week: int
    outcome_week: int


@dataclass(slots=True)
class LearnEvent:
    """When the policy learned from which event (for leak checks and learning curves)."""

    event_id: str
    learn_week: int
    decision_week: int
    outcome_week: int


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """Outcome of a replay: one row per decision plus the learning log.

    ``decisions`` columns: ``week``, ``event_id``, ``group``, ``target_group``, ``gender``,
    ``origin``, ``age_band``, ``eligible_count``, ``eligible_families`` (``;``-separated, for
    the fairness audit's rates among the eligible), ``recommended`` / ``assigned`` (action index,
    -1 for none), ``*_family``, ``complied``, ``p_recommended``, ``p_assigned``, ``p_oracle``,
    ``p_practice`` (TRUE P(job within H) under the recommendation, the assignment, the best
    eligible action and practice as usual), ``regret`` (oracle minus recommendation, treatment
    only), ``employed`` (realised within H), ``job_week``, ``benefit_weeks``, ``benefit_dkk``.
    """

    decisions: pd.DataFrame
    learn_log: tuple[LearnEvent, ...]
    action_ids: tuple[str, ...]
    policy: str
    weeks: int
    seed: int


def weekly_seats(
    config: SimulationConfig, catalog: Catalog, arms: tuple[Intervention, ...]
) -> np.ndarray:
    """Seats per week of each action, shape ``(K,)``; ``inf`` when unlimited or capacity off.

    Examples
    --------
    >>> cat = default_catalog()
    >>> seats = weekly_seats(SimulationConfig(capacity_scale=0.01), cat, select_arms(cat, 1))
    >>> bool(np.isinf(seats[0])), bool(np.isfinite(seats[1]))
    (True, True)
    """
    out = np.full(len(arms), np.inf)
    if config.capacity_scale <= 0:
        return out
    for k, arm in enumerate(arms):
        if arm.capacity is None:
            continue
        family_size = sum(1 for item in catalog if item.family is arm.family)
        share = family_size / min(config.offers_per_family, family_size)
        out[k] = max(1.0, round(arm.capacity * share * config.capacity_scale * config.scale))
    return out


class Replay:
    """The week-by-week simulation of the recommender in operation.

    Parameters
    ----------
    policy
        The recommending policy (learns online in-process).
    config
        Simulation configuration.
    weeks
        Number of simulated weeks.
    seed
        Seed of the population, outcomes, compliance draws and offer effects.
    catalog
        Catalog of offers (default catalog); the action set is
        :func:`~simulator.outcomes.select_arms` of it.

    Examples
    --------
    >>> from simulator.policies import build_policy
    >>> cfg = SimulationConfig(scale=0.01)
    >>> result = Replay(build_policy("uniform", seed=1), cfg, weeks=3, seed=1).run()
    >>> set(result.decisions["group"]) <= {"treatment", "control"}
    True
    """

    def __init__(
        self,
        policy: Policy,
        config: SimulationConfig | None = None,
        *,
        weeks: int = 52,
        seed: int = 0,
        catalog: Catalog | None = None,
    ) -> None:
        self.policy = policy
        self.config = config or SimulationConfig()
        self.weeks = weeks
        self.seed = seed
        self.week = 0
        catalog = catalog or default_catalog()
        arms = select_arms(catalog, self.config.offers_per_family)
        self.effects: ArmEffects = arm_effects(self.config, catalog, arms, seed=seed)
        self.weekly_seats = weekly_seats(self.config, catalog, arms)
        self.actions: tuple[Action, ...] = tuple(a.as_action() for a in arms)
        self.experiment = ExperimentConfig(
            salt=SIM_EXPERIMENT_SALT, control_share=self.config.control_share
        )
        self.practice = PracticeAsUsualPolicy(floor=0.0, seed=seed + 1)
        self._rng = np.random.default_rng(seed)
        self._population = PopulationModel(self.config, seed=seed)
        self._pending: dict[int, list[_Pending]] = defaultdict(list)
        self._learn_log: list[LearnEvent] = []
        self._data: dict[str, list[object]] = defaultdict(list)

    def run(self, progress: Callable[[int], None] | None = None) -> ReplayResult:
        """Run all weeks; ``progress(week)`` is called after each week."""
        for week in range(self.weeks):
            self.week = week
            self._settle(week)
            self._decide_week(week)
            if progress is not None:
                progress(week)
        return ReplayResult(
            decisions=pd.DataFrame(self._data),
            learn_log=tuple(self._learn_log),
            action_ids=tuple(a.id for a in self.actions),
            policy=self.policy.name,
            weeks=self.weeks,
            seed=self.seed,
        )

    # ------------------------------------------------------------------ internals

    def _settle(self, week: int) -> None:
        for item in self._pending.pop(week, []):
            self.policy.learn(item.decision, item.reward, propensity=item.decision.propensity)
            self._learn_log.append(
                LearnEvent(item.decision.event_id, week, item.decision_week, item.outcome_week)
            )

    def _recommend(
        self, prepared: PreparedCohort, i: int, idx: np.ndarray, event_id: str
    ) -> tuple[Group, int, Decision | None]:
        """RCT group, recommended action index (-1 for control) and the decision."""
        cohort = prepared.cohort
        pseudonym = pseudonymise(f"sim-{self.seed}-{int(cohort.serial[i])}", SIM_PSEUDONYM_KEY)
        group = self.experiment.group_of(pseudonym)
        if group is Group.CONTROL:
            return group, _NO_ACTION, None
        if isinstance(self.policy, OraclePolicy):
            self.policy.set_truth({self.actions[k].id: float(prepared.p_job[i, k]) for k in idx})
        actions = [self.actions[k] for k in idx]
        decision = self.policy.choose(prepared.features[i], actions, event_id=event_id)
        return group, int(idx[decision.chosen]), decision

    def _assigned(self, event_id: str, recommended: int, assigned: int) -> None:
        """Hook: the caseworker's assignment is known (the HTTP driver posts it)."""

    def _schedule(
        self, event_id: str, decision: Decision | None, complied: bool, reward: float, known: int
    ) -> None:
        """Queue the outcome of one event; it becomes visible ``known`` weeks from now + lag.

        In-process learning uses complied treatment events only, with the logged propensity.
        """
        if decision is None or not complied:
            return
        outcome_week = self.week + known
        self._pending[outcome_week + self.config.lag_weeks].append(
            _Pending(decision, reward, self.week, outcome_week)
        )

    def _decide_week(self, week: int) -> None:
        cohort = draw_decision_cohort(self.config, self._population, week, self._rng)
        if len(cohort) == 0:
            return
        prepared = prepare(self.config, cohort, self.effects, week=week)
        n = len(cohort)
        comply_u = self._rng.random(n)
        recommended = np.full(n, _NO_ACTION)
        assigned = np.zeros(n, dtype=int)
        practice_choice = np.zeros(n, dtype=int)
        decisions: list[Decision | None] = [None] * n
        groups: list[Group] = []
        seats = self.weekly_seats.copy()
        for i in range(n):
            event_id = f"sim{self.seed}-w{week}-{int(cohort.serial[i])}"
            prepared.eligible[i] &= seats > 0
            idx = np.flatnonzero(prepared.eligible[i])
            actions = [self.actions[k] for k in idx]
            usual = self.practice.choose(prepared.features[i], actions, event_id=event_id + ":cw")
            practice_choice[i] = idx[usual.chosen]
            group, rec, decisions[i] = self._recommend(prepared, i, idx, event_id)
            groups.append(group)
            recommended[i] = rec
            assigned[i] = practice_choice[i]
            if rec != _NO_ACTION and comply_u[i] < self.config.compliance:
                assigned[i] = rec
            seats[assigned[i]] -= 1
            self._assigned(event_id, rec, int(assigned[i]))
        self._record(week, prepared, recommended, assigned, practice_choice, decisions, groups)

    def _record(
        self,
        week: int,
        prepared: PreparedCohort,
        recommended: np.ndarray,
        assigned: np.ndarray,
        practice_choice: np.ndarray,
        decisions: list[Decision | None],
        groups: list[Group],
    ) -> None:
        cfg = self.config
        cohort = prepared.cohort
        n = len(cohort)
        rows = np.arange(n)
        realised = sample_outcomes(
            prepared.g[rows, assigned], cfg.non_employment_hazard, cfg.horizon_weeks, self._rng
        )
        flip = self._rng.random(n) < cfg.misclassification
        reward = np.where(flip, ~realised.employed, realised.employed).astype(float)
        p_best = np.where(prepared.eligible, prepared.p_job, -np.inf).max(axis=1)
        p_rec = np.where(recommended >= 0, prepared.p_job[rows, np.maximum(recommended, 0)], np.nan)
        weekly_dkk = benefit_dkk_per_week(cohort)
        families = [f.value for f in self.effects.family]
        for i in range(n):
            early = cfg.settle_jobs_early and realised.employed[i]
            known = int(realised.job_week[i]) + 1 if early else cfg.horizon_weeks
            self._schedule(
                f"sim{self.seed}-w{week}-{int(cohort.serial[i])}",
                decisions[i],
                bool(recommended[i] == assigned[i]),
                float(reward[i]),
                known,
            )
        data = self._data
        data["week"].extend([week] * n)
        data["event_id"].extend(f"sim{self.seed}-w{week}-{int(s)}" for s in cohort.serial)
        data["group"].extend(g.value for g in groups)
        data["target_group"].extend("dagpenge" if g == 0 else "kontanthjaelp" for g in cohort.group)
        data["gender"].extend(GENDERS[int(x)].value for x in cohort.gender)
        data["origin"].extend(ORIGINS[int(x)].value for x in cohort.origin)
        data["age_band"].extend(age_band(int(a)) for a in cohort.age)
        data["latent_type"].extend(cohort.type_index.tolist())
        data["eligible_count"].extend(prepared.eligible.sum(axis=1).tolist())
        data["eligible_families"].extend(
            ";".join(sorted({families[k] for k in np.flatnonzero(row)}))
            for row in prepared.eligible
        )
        data["recommended"].extend(recommended.tolist())
        data["assigned"].extend(assigned.tolist())
        data["recommended_family"].extend(families[k] if k >= 0 else "" for k in recommended)
        data["assigned_family"].extend(families[k] for k in assigned)
        data["complied"].extend((recommended == assigned).tolist())
        data["p_recommended"].extend(p_rec.tolist())
        data["p_assigned"].extend(prepared.p_job[rows, assigned].tolist())
        data["p_practice"].extend(prepared.p_job[rows, practice_choice].tolist())
        data["p_oracle"].extend(p_best.tolist())
        data["regret"].extend((p_best - p_rec).tolist())
        data["employed"].extend(realised.employed.tolist())
        data["reward"].extend(reward.tolist())
        data["job_week"].extend(realised.job_week.tolist())
        data["benefit_weeks"].extend(realised.benefit_weeks.tolist())
        data["benefit_dkk"].extend((realised.benefit_weeks * weekly_dkk).tolist())

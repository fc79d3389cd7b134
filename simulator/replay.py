"""Online replay: the full decision loop week by week with delayed outcomes.

It runs the service's decision engine (:func:`bandit.engine.decide`) and its feedback loop
(:class:`bandit.feedback.FeedbackLearner`) on the full shipped catalog by default. Each
simulated week: (1) outcomes that become known this week are reported to the feedback loop,
which then learns whatever its delay strategy releases by now; (2) the week's decision cohort
arrives in random order; each citizen is assigned to treatment or control by
:class:`bandit.control.ExperimentConfig` on the pseudonym; :func:`bandit.engine.decide`
filters the legal offers with seats left this week (seats are shared by both arms) and, for
treatment, asks the policy; the caseworker follows the recommendation with probability
``compliance`` (otherwise practice as usual); control gets practice as usual; (3) outcomes are
drawn from the hazard path of the assigned offer. A job found in week ``t`` after the decision
is reported at week ``t + 1`` (+ lag); "no job" at the horizon ``H`` (+ lag). The policy never
sees an outcome earlier.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bandit.catalog import Catalog, default_catalog
from bandit.context import age_band
from bandit.control import ExperimentConfig, Group
from bandit.engine import decide, shortlist_indices
from bandit.equity import EquityConfig, EquityGate
from bandit.feedback import (
    DEFAULT_STRATEGY,
    WEEK_SECONDS,
    DelayStrategy,
    FeedbackLearner,
    resolve_delay,
)
from bandit.history import PastDecision, history_features, merge_history
from bandit.policies import Policy
from bandit.policies.practice import PracticeAsUsualPolicy
from bandit.privacy import pseudonymise
from bandit.rewards import Outcome, OutcomeStatus
from bandit.types import Action, Decision, FeatureValue
from simulator.arrivals import (
    PreparedCohort,
    concat_cohorts,
    draw_decision_cohort,
    prepare,
    returning_spells,
)
from simulator.config import SimulationConfig
from simulator.outcomes import (
    ArmEffects,
    arm_effects,
    benefit_dkk_per_week,
    sample_outcomes,
    select_arms,
    weekly_seats,
)
from simulator.policies import OraclePolicy
from simulator.population import GENDERS, GROUPS, ORIGINS, Cohort, PopulationModel
from simulator.reference import (
    REFERENCE_POLICIES,
    best_noncontextual_order,
    reference_choices,
)

SIM_PSEUDONYM_KEY = b"nbi-simulator-pseudonym-key"
SIM_EXPERIMENT_SALT = b"nbi-simulator-experiment-salt"
SHOWN_OPTIONS = 3
"""Options on the caseworker's shortlist (as the service's default ``max_options``)."""
_NO_ACTION = -1


@dataclass(frozen=True, slots=True)
class OutcomeReport:
    """One outcome as the case system reports it, in the simulated week it becomes known."""

    event_id: str
    outcome: Outcome


@dataclass(slots=True)
class LearnEvent:
    """When the feedback loop received the outcome of which event (for leak checks)."""

    event_id: str
    learn_week: int
    decision_week: int
    outcome_week: int


CASE_FACT_COLUMNS = (
    "age",
    "education",
    "weeks_unemployed",
    "benefit_history_weeks",
    "last_sector",
    "danish_proficiency",
    "health_limitation",
    "single_parent",
    "labour_demand_index",
)
"""The observable case facts written per decision (the recommender's context features besides
``target_group``): pre-treatment covariates for the trial analysis and the prognostic score."""


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """Outcome of a replay: one row per decision plus the learning log.

    ``decisions`` columns: ``week``, ``event_id``, ``group``, ``target_group``, ``gender``,
    ``origin``, ``age_band``, ``eligible_count``, ``eligible_families`` (``;``-separated, for
    the fairness audit's rates among the eligible), ``recommended`` / ``assigned`` (action index,
    -1 for none), ``*_family``, ``complied``, ``p_recommended``, ``p_assigned``, ``p_oracle``,
    ``p_practice`` (TRUE P(job within H) under the recommendation, the assignment, the best
    action available to that citizen and practice as usual). "Eligible" and "available" mean
    legal with a seat left when the citizen's turn came in the week, ``shown_recommended`` (the policy's own estimate
    for the recommendation, treatment only), ``regret`` (oracle minus recommendation, treatment
    only), ``employed`` (realised within H), ``job_week`` (-1 for none), ``weeks_to_job`` (the
    same week, empty when no job) and ``follow_up_weeks`` (H) in the trial-file convention of
    :mod:`offline_eval.trial_data`, ``benefit_weeks``, ``benefit_dkk``, ``programme_cost_dkk``
    (the catalog cost of the assigned offer), ``true_cost_dkk`` (TRUE expected benefit DKK within
    H + programme cost of the assignment; ``cost_<name>`` the same for each reference policy's
    choice, with ``references``); the observable case
    facts of :data:`CASE_FACT_COLUMNS`;
    ``p_obs_recommended`` (the observable truth E[P(job within H) | case facts] of the
    recommendation) and, with ``references``, ``v_<name>`` for every reference policy of
    :mod:`simulator.reference`: the TRUE value each citizen would get if everyone of the week
    followed that policy (seats respected).
    """

    decisions: pd.DataFrame
    learn_log: tuple[LearnEvent, ...]
    action_ids: tuple[str, ...]
    policy: str
    weeks: int
    seed: int
    delay: str = DEFAULT_STRATEGY.value
    shown: pd.DataFrame | None = None
    """The shortlist caseworkers were shown (treatment): ``week``, ``event_id``, ``rank``,
    ``action`` (index), ``mean``, ``low``, ``high`` (the policy's shown estimate and 95 %
    interval) and ``p_obs`` (the observable truth of that option for that citizen)."""
    returns: pd.DataFrame | None = None
    """With ``repeat_spells``: one row per job found (``event_id`` of the decision before it,
    ``target_group``, calendar ``job_start``, ``spell_start`` of the next spell and its
    ``meeting_week``, -1 when the citizen left benefit before the meeting). The decisions then
    also have a ``prior_spells`` column (the history feature the policy saw, 0 for none)."""


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
    delay
        How delayed outcomes reach the learner (:func:`bandit.feedback.resolve_delay`:
        ``hazard`` for a hazard learner, ``horizon`` for any other policy by default).
    repeat_spells
        Citizens who find a job lose it with the weekly separation hazard and come back for a
        new spell (:func:`~simulator.arrivals.returning_spells`, domain.md 5.3: about 40 %
        within a year); a returning citizen keeps the pseudonym, hence the RCT arm, and the
        policy sees the history features of :mod:`bandit.history`, derived exactly as the
        service derives them. Off by default (the calibrated volumes are new spells only).

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
        delay: DelayStrategy | str | None = None,
        references: bool = True,
        repeat_spells: bool = False,
    ) -> None:
        self.policy = policy
        self.config = config or SimulationConfig()
        self.weeks = weeks
        self.seed = seed
        self.week = 0
        catalog = catalog or default_catalog()
        arms = select_arms(catalog, self.config.offers_per_family)
        self.catalog = catalog if len(arms) == len(catalog) else Catalog(arms)
        self.effects: ArmEffects = arm_effects(self.config, catalog, arms, seed=seed)
        self.weekly_seats = weekly_seats(self.config, catalog, arms)
        self.actions: tuple[Action, ...] = tuple(a.as_action() for a in arms)
        self.equity = EquityGate.build(
            self.catalog,
            {a.id: float(n) for a, n in zip(self.actions, self.weekly_seats, strict=True)},
            EquityConfig(
                reserve_share=self.config.equity_reserve_share,
                priority_share=self.config.equity_priority_share,
            ),
        )
        self._index = {a.id: k for k, a in enumerate(self.actions)}
        self.experiment = ExperimentConfig(
            salt=SIM_EXPERIMENT_SALT, control_share=self.config.control_share
        )
        self.delay = resolve_delay(delay, policy)
        self.feedback = FeedbackLearner(
            policy,
            self.delay,
            horizon_weeks=self.config.horizon_weeks,
            lag_weeks=float(self.config.lag_weeks),
        )
        self.practice = PracticeAsUsualPolicy(floor=0.0, seed=seed + 1)
        self._rng = np.random.default_rng(seed)
        self._population = PopulationModel(self.config, seed=seed)
        self._reports: dict[int, list[OutcomeReport]] = defaultdict(list)
        self._decided_week: dict[str, tuple[int, int]] = {}
        self._learn_log: list[LearnEvent] = []
        self._data: dict[str, list[object]] = defaultdict(list)
        self._shown: dict[str, list[object]] = defaultdict(list)
        self._week_shown: list[tuple[int, int, int, float, float, float]] = []
        self._catalog_full = catalog
        self._arms = arms
        self.references = references
        self._order: np.ndarray | None = None
        self._ref_rng = np.random.default_rng(seed + 104_729)
        self.repeat_spells = repeat_spells
        self._spell_rng = np.random.default_rng(seed + 7_919)
        self._returning: dict[int, list[Cohort]] = defaultdict(list)
        self._past: dict[int, list[PastDecision]] = defaultdict(list)
        self._returns: dict[str, list[object]] = defaultdict(list)

    def best_noncontextual_order(self) -> np.ndarray:
        """The fixed priority order of the ``best_noncontextual`` reference (computed once)."""
        if self._order is None:
            self._order = best_noncontextual_order(
                self.config, self._catalog_full, self._arms, self.effects, self.seed
            )
        return self._order

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
            delay=self.delay.value,
            shown=pd.DataFrame(self._shown),
            returns=pd.DataFrame(self._returns) if self.repeat_spells else None,
        )

    # ------------------------------------------------------------------ hooks (HTTP driver)

    def _settle(self, week: int) -> None:
        """Report this week's outcomes to the feedback loop, then let it learn what is due."""
        now = week * WEEK_SECONDS
        for report in self._reports.pop(week, []):  # only followed events are reported
            self.feedback.on_outcome(report.event_id, report.outcome, now)
            decision_week, outcome_week = self._decided_week.pop(report.event_id)
            self._learn_log.append(LearnEvent(report.event_id, week, decision_week, outcome_week))
        self.feedback.advance(now)

    def _recommend(
        self,
        prepared: PreparedCohort,
        i: int,
        available: np.ndarray,
        seats_left: dict[str, int],
        event_id: str,
    ) -> tuple[Group, int, Decision | None, float]:
        """RCT group, recommended action index (-1 for control), the decision and the
        policy's shown estimate of the recommendation (NaN when none)."""
        serial = int(prepared.cohort.serial[i])
        pseudonym = pseudonymise(f"sim-{self.seed}-{serial}", SIM_PSEUDONYM_KEY)
        group = self.experiment.group_of(pseudonym)
        features = prepared.features[i]
        if self.repeat_spells:
            features = merge_history(features, self._history(prepared, i))
        decided = decide(
            self.policy,
            self.catalog,
            prepared.contexts[i],
            event_id=event_id,
            timestamp=self.week * WEEK_SECONDS,
            citizen_key=pseudonym,
            group=group,
            experiment=self.experiment.fingerprint,
            seats_left=seats_left,
            features=features,
            equity=self.equity,
        )
        decision = decided.decision
        if decision is None:
            return group, _NO_ACTION, None, float("nan")
        top = shortlist_indices(
            decision.expected_rewards, decision.action_ids, SHOWN_OPTIONS, decision.chosen
        )
        options = [decision.actions[j] for j in top]
        raw = [decision.expected_rewards[j] for j in top]  # the choice's own model call
        for rank, (action, est) in enumerate(
            zip(options, self.policy.estimates(features, options, raw=raw), strict=True),
            start=1,
        ):
            self._week_shown.append((i, rank, self._index[action.id], est.mean, est.low, est.high))
        shown = float(decision.expected_rewards[decision.chosen])
        return group, self._index[decision.chosen_action.id], decision, shown

    def _history(self, prepared: PreparedCohort, i: int) -> dict[str, FeatureValue]:
        """History features of citizen ``i`` of this week (:func:`bandit.history.history_features`
        of the citizen's earlier decisions; empty for a first spell)."""
        cohort = prepared.cohort
        return history_features(
            self._past.get(int(cohort.serial[i]), ()),
            timestamp=self.week * WEEK_SECONDS,
            weeks_unemployed=float(cohort.decision_spell_week[i]),
        )

    def _assigned(
        self, event_id: str, recommended: int, assigned: int, decision: Decision | None
    ) -> None:
        """The caseworker's assignment is known (the HTTP driver posts it)."""
        if decision is not None and recommended == assigned:
            self.feedback.on_followed(decision, timestamp=self.week * WEEK_SECONDS)

    def _schedule(self, event_id: str, report: OutcomeReport, known: int, followed: bool) -> None:
        """Queue the outcome of one event; it is reported ``known`` weeks from now + lag."""
        if not followed:
            return
        outcome_week = self.week + known
        self._decided_week[event_id] = (self.week, outcome_week)
        self._reports[outcome_week + self.config.lag_weeks].append(report)

    # ------------------------------------------------------------------ internals

    def _decide_week(self, week: int) -> None:
        cohort = self._week_cohort(week)
        if len(cohort) == 0:
            return
        cohort = cohort.subset(self._rng.permutation(len(cohort)))  # arrival order
        prepared = prepare(
            self.config, cohort, self.effects, week=week, population=self._population
        )
        legal = prepared.eligible.copy()
        n = len(cohort)
        comply_u = self._rng.random(n)
        recommended = np.full(n, _NO_ACTION)
        assigned = np.zeros(n, dtype=int)
        practice_choice = np.zeros(n, dtype=int)
        shown = np.full(n, np.nan)
        available_at_turn = np.zeros_like(prepared.eligible)
        groups: list[Group] = []
        seats = self.weekly_seats.copy()
        seats_left = {self.actions[k].id: int(seats[k]) for k in np.flatnonzero(np.isfinite(seats))}
        oracle = self.policy if isinstance(self.policy, OraclePolicy) else None
        for i in range(n):
            event_id = f"sim{self.seed}-w{week}-{int(cohort.serial[i])}"
            available = prepared.eligible[i] & (seats > 0)
            available_at_turn[i] = available
            idx = np.flatnonzero(available)
            actions = [self.actions[k] for k in idx]
            usual = self.practice.choose(prepared.features[i], actions, event_id=event_id + ":cw")
            practice_choice[i] = idx[usual.chosen]
            if oracle is not None:
                oracle.set_truth({self.actions[k].id: float(prepared.p_job[i, k]) for k in idx})
            group, rec, decision, shown[i] = self._recommend(prepared, i, idx, seats_left, event_id)
            groups.append(group)
            recommended[i] = rec
            assigned[i] = practice_choice[i]
            if rec != _NO_ACTION and comply_u[i] < self.config.compliance:
                assigned[i] = rec
            k = int(assigned[i])
            seats[k] -= 1
            if self.actions[k].id in seats_left:
                seats_left[self.actions[k].id] = int(seats[k])
            self._assigned(event_id, rec, k, decision)
            self._remember(cohort, i, k)
        if self.references:
            refs = reference_choices(
                prepared,
                self.weekly_seats,
                practice_choice,
                self._ref_rng,
                self.best_noncontextual_order(),
                eligible=legal,
            )
            weekly = benefit_dkk_per_week(prepared.cohort)
            rows = np.arange(len(weekly))
            for name in REFERENCE_POLICIES:
                self._data[f"v_{name}"].extend(refs[name].value.tolist())
                ref_k = refs[name].choice
                true_cost = (
                    prepared.benefit_weeks[rows, ref_k] * weekly + self._programme_costs()[ref_k]
                )
                self._data[f"cost_{name}"].extend(true_cost.tolist())
        for i, rank, k, mean, low, high in self._week_shown:
            self._shown["week"].append(week)
            self._shown["event_id"].append(f"sim{self.seed}-w{week}-{int(cohort.serial[i])}")
            self._shown["rank"].append(rank)
            self._shown["action"].append(k)
            self._shown["mean"].append(mean)
            self._shown["low"].append(low)
            self._shown["high"].append(high)
            self._shown["p_obs"].append(float(prepared.p_obs[i, k]))
        self._week_shown.clear()
        rows = np.arange(n)
        p_obs_rec = np.where(
            recommended >= 0, prepared.p_obs[rows, np.maximum(recommended, 0)], np.nan
        )
        self._data["p_obs_recommended"].extend(p_obs_rec.tolist())
        prepared = dataclasses.replace(prepared, eligible=available_at_turn)
        self._record(week, prepared, recommended, assigned, practice_choice, groups, shown)

    def _record(
        self,
        week: int,
        prepared: PreparedCohort,
        recommended: np.ndarray,
        assigned: np.ndarray,
        practice_choice: np.ndarray,
        groups: list[Group],
        shown: np.ndarray,
    ) -> None:
        cfg = self.config
        cohort = prepared.cohort
        n = len(cohort)
        rows = np.arange(n)
        realised = sample_outcomes(
            prepared.paths(assigned),
            cfg.non_employment(cohort.group),
            cfg.horizon_weeks,
            self._rng,
        )
        flip = self._rng.random(n) < cfg.misclassification
        employed_reported = np.where(flip, ~realised.employed, realised.employed)
        reward = employed_reported.astype(float)
        p_best = np.where(prepared.eligible, prepared.p_job, -np.inf).max(axis=1)
        p_rec = np.where(recommended >= 0, prepared.p_job[rows, np.maximum(recommended, 0)], np.nan)
        weekly_dkk = benefit_dkk_per_week(cohort)
        families = [f.value for f in self.effects.family]
        event_ids = [f"sim{self.seed}-w{week}-{int(s)}" for s in cohort.serial]
        for i in range(n):
            report, known = self._report_of(
                event_ids[i], bool(employed_reported[i]), int(realised.job_week[i])
            )
            followed = recommended[i] != _NO_ACTION and recommended[i] == assigned[i]
            self._schedule(event_ids[i], report, known, bool(followed))
        if self.repeat_spells:
            self._schedule_returns(week, prepared, realised.job_week, event_ids)
        data = self._data
        data["week"].extend([week] * n)
        data["event_id"].extend(event_ids)
        data["group"].extend(g.value for g in groups)
        data["target_group"].extend("dagpenge" if g == 0 else "kontanthjaelp" for g in cohort.group)
        data["gender"].extend(GENDERS[int(x)].value for x in cohort.gender)
        data["origin"].extend(ORIGINS[int(x)].value for x in cohort.origin)
        data["age_band"].extend(age_band(int(a)) for a in cohort.age)
        data["latent_type"].extend(cohort.type_index.tolist())
        for fact in CASE_FACT_COLUMNS:  # what the case system knows before the decision
            data[fact].extend(features[fact] for features in prepared.features)
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
        data["shown_recommended"].extend(shown.tolist())
        data["p_assigned"].extend(prepared.p_job[rows, assigned].tolist())
        data["p_practice"].extend(prepared.p_job[rows, practice_choice].tolist())
        data["p_oracle"].extend(p_best.tolist())
        data["regret"].extend((p_best - p_rec).tolist())
        data["employed"].extend(realised.employed.tolist())
        data["reward"].extend(reward.tolist())
        data["job_week"].extend(realised.job_week.tolist())
        data["weeks_to_job"].extend(np.where(realised.employed, realised.job_week, np.nan).tolist())
        data["follow_up_weeks"].extend([cfg.horizon_weeks] * n)
        data["benefit_weeks"].extend(realised.benefit_weeks.tolist())
        data["benefit_dkk"].extend((realised.benefit_weeks * weekly_dkk).tolist())
        costs = self._programme_costs()
        data["programme_cost_dkk"].extend(costs[assigned].tolist())
        true_cost = prepared.benefit_weeks[rows, assigned] * weekly_dkk + costs[assigned]
        data["true_cost_dkk"].extend(true_cost.tolist())

    def _week_cohort(self, week: int) -> Cohort:
        """The week's decision cohort: new spells, and with ``repeat_spells`` the returners."""
        cohort = draw_decision_cohort(self.config, self._population, week, self._rng)
        if self.repeat_spells and week in self._returning:
            cohort = concat_cohorts([cohort, *self._returning.pop(week)])
        return cohort

    def _remember(self, cohort: Cohort, i: int, assigned: int) -> None:
        """Keep what :func:`bandit.history.past_decisions` reads from a stored record: time,
        spell week and the assigned offer's family (``repeat_spells`` only)."""
        if not self.repeat_spells:
            return
        family = self.catalog.get(self.actions[assigned].id).family.value
        self._past[int(cohort.serial[i])].append(
            PastDecision(self.week * WEEK_SECONDS, float(cohort.decision_spell_week[i]), family)
        )

    def _schedule_returns(
        self, week: int, prepared: PreparedCohort, job_week: np.ndarray, event_ids: list[str]
    ) -> None:
        """Queue the next spell of every citizen who found a job (true, not as reported), and
        write this week's ``prior_spells`` column."""
        cohort = prepared.cohort
        self._data["prior_spells"].extend(
            int(self._history(prepared, i).get("prior_spells", 0)) for i in range(len(cohort))
        )
        back = returning_spells(
            self.config, cohort, week=week, job_week=job_week, rng=self._spell_rng
        )
        met = back.meeting_week[back.meeting_week >= 0]
        for j, meeting in enumerate(met.tolist()):
            self._returning[int(meeting)].append(back.cohort.subset(np.array([j])))
        rows = self._returns
        rows["event_id"].extend(event_ids[i] for i in back.source)
        rows["target_group"].extend(GROUPS[int(cohort.group[i])].value for i in back.source)
        rows["job_start"].extend(back.job_start.tolist())
        rows["spell_start"].extend(back.spell_start.tolist())
        rows["meeting_week"].extend(back.meeting_week.tolist())

    def _programme_costs(self) -> np.ndarray:
        """The catalog's programme cost per participant of each action index (DKK)."""
        return np.array([item.programme_cost_dkk for item in self.catalog])

    def _report_of(self, event_id: str, employed: bool, job_week: int) -> tuple[OutcomeReport, int]:
        """What the register reports (misclassification included) and how many weeks later."""
        horizon = self.config.horizon_weeks
        if employed:
            week = job_week if job_week >= 0 else horizon - 1  # a flipped "employed" record
            outcome = Outcome(OutcomeStatus.EMPLOYED, weeks_to_job=float(week))
            return OutcomeReport(event_id, outcome), week + 1
        return OutcomeReport(event_id, Outcome(OutcomeStatus.UNEMPLOYED_AT_HORIZON)), horizon

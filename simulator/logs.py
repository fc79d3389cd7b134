"""Historical logs with known propensities, and the TRUE value of any target policy.

The logged action set is fixed and small: the first offer of each family in the catalog
(``offers_per_family=1`` gives K = 11 actions, index order = catalog family order), so target
policies are arrays of shape ``(n_rounds, K)``. Ineligible actions get probability 0 in the
logger's pmf; ``expected_reward_matrix`` is defined for every action (the simulator knows what
*would* happen), and ``eligible`` says which ones were legal.

File layout (design.md logged-bandit format): ``action`` (0..K-1), ``reward`` (job within H
weeks, realised), ``propensity``, ``pmf_0..pmf_{K-1}``, ``timestamp`` (decision week), the model
context columns, and audit-only columns with the ``protected_`` prefix (gender, origin, age
band) plus ``rct_group``. Readers must exclude the ``protected_`` and ``rct_group`` columns
from model contexts (they are not features).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bandit.catalog import Catalog, default_catalog
from bandit.context import age_band
from bandit.control import ExperimentConfig
from bandit.errors import InvalidInputError
from bandit.policies import Policy
from bandit.privacy import pseudonymise
from simulator.arrivals import draw_decision_cohort, prepare
from simulator.config import SimulationConfig
from simulator.outcomes import arm_effects, sample_outcomes, select_arms
from simulator.policies import build_policy
from simulator.population import GENDERS, ORIGINS, PopulationModel
from simulator.replay import SIM_EXPERIMENT_SALT, SIM_PSEUDONYM_KEY

AUDIT_COLUMNS = ("protected_gender", "protected_origin", "protected_age_band", "rct_group")
LOGGING_POLICIES = ("practice", "uniform")


def true_policy_value(target_probs: np.ndarray, expected_reward_matrix: np.ndarray) -> float:
    """Exact value ``mean_i sum_k pi(k | x_i) E[r | x_i, k]`` of a target policy.

    Examples
    --------
    >>> e = np.array([[0.2, 0.8], [0.5, 0.1]])
    >>> true_policy_value(np.array([[0.0, 1.0], [1.0, 0.0]]), e)
    0.65
    """
    probs = np.asarray(target_probs, dtype=float)
    if probs.shape != expected_reward_matrix.shape:
        msg = f"Expected `target_probs.shape == {expected_reward_matrix.shape}`, got {probs.shape}"
        raise InvalidInputError(msg)
    if not np.all(np.isfinite(probs)) or probs.min() < 0:
        msg = "Expected finite, non-negative target probabilities"
        raise InvalidInputError(msg)
    if not np.allclose(probs.sum(axis=1), 1.0, atol=1e-6):
        msg = "Expected target probabilities that sum to 1 in every round"
        raise InvalidInputError(msg)
    return float(np.mean(np.sum(probs * expected_reward_matrix, axis=1)))


@dataclass(frozen=True, slots=True)
class SimulatedLogs:
    """A logged-bandit dataset and its ground truth.

    Attributes
    ----------
    frame
        One row per round (see the module docstring for the columns).
    expected_reward_matrix
        TRUE P(job within H) of every action in every round, shape ``(n_rounds, K)``.
    eligible
        Legal actions per round, shape ``(n_rounds, K)``.
    action_ids, action_families
        Catalog id and family of each action index.
    logging_policy
        Name of the logger.
    """

    frame: pd.DataFrame
    expected_reward_matrix: np.ndarray
    eligible: np.ndarray
    action_ids: tuple[str, ...]
    action_families: tuple[str, ...]
    logging_policy: str

    @property
    def context_columns(self) -> tuple[str, ...]:
        """Model context columns (protected/audit and bandit columns excluded)."""
        skip = {"action", "reward", "propensity", "timestamp", *AUDIT_COLUMNS}
        return tuple(
            str(c) for c in self.frame.columns if c not in skip and not str(c).startswith("pmf_")
        )

    def true_policy_value(self, target_probs: np.ndarray) -> float:
        """Exact value of a target policy given as probabilities, shape ``(n_rounds, K)``."""
        return true_policy_value(target_probs, self.expected_reward_matrix)

    def oracle_probs(self) -> np.ndarray:
        """The best eligible action in every round, one-hot, shape ``(n_rounds, K)``."""
        best = np.where(self.eligible, self.expected_reward_matrix, -np.inf).argmax(axis=1)
        out = np.zeros_like(self.expected_reward_matrix)
        out[np.arange(out.shape[0]), best] = 1.0
        return out

    def logging_probs(self) -> np.ndarray:
        """The logger's pmf, shape ``(n_rounds, K)``."""
        cols = [f"pmf_{k}" for k in range(len(self.action_ids))]
        return self.frame[cols].to_numpy(dtype=float)

    def write(self, path: str | Path) -> Path:
        """Write the log (Parquet, or CSV by suffix) plus ``<stem>.truth.npz`` and ``.meta.json``."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.suffix.lower() == ".csv":
            self.frame.to_csv(target, index=False)
        else:
            self.frame.to_parquet(target, index=False)
        stem = target.with_suffix("")
        np.savez_compressed(
            f"{stem}.truth.npz",
            expected_reward_matrix=self.expected_reward_matrix,
            eligible=self.eligible,
        )
        meta = {
            "action_ids": list(self.action_ids),
            "action_families": list(self.action_families),
            "logging_policy": self.logging_policy,
            "context_columns": list(self.context_columns),
            "audit_columns": list(AUDIT_COLUMNS),
            "reward": "employed within the horizon (weeks) of the decision",
        }
        Path(f"{stem}.meta.json").write_text(json.dumps(meta, indent=2))
        return target


def generate_logs(
    n_rounds: int,
    *,
    logging_policy: str | Policy = "practice",
    floor: float = 0.05,
    config: SimulationConfig | None = None,
    seed: int = 0,
    catalog: Catalog | None = None,
) -> SimulatedLogs:
    """Simulate historical decisions by a logging policy with known propensities.

    Examples
    --------
    >>> logs = generate_logs(200, seed=1)
    >>> logs.expected_reward_matrix.shape, bool(logs.frame["propensity"].gt(0).all())
    ((200, 11), True)
    >>> v = logs.true_policy_value(logs.logging_probs())
    >>> 0.0 < v < 1.0
    True
    """
    if n_rounds < 1:
        msg = f"Expected n_rounds >= 1, got {n_rounds}"
        raise InvalidInputError(msg)
    config = config or SimulationConfig(scale=0.25, offers_per_family=1, capacity_scale=0.0)
    catalog = catalog or default_catalog()
    arms = select_arms(catalog, config.offers_per_family)
    effects = arm_effects(config, catalog, arms, seed=seed)
    actions = tuple(a.as_action() for a in arms)
    policy = (
        logging_policy
        if isinstance(logging_policy, Policy)
        else build_policy(logging_policy, seed=seed, floor=floor)
    )
    rng = np.random.default_rng(seed)
    population = PopulationModel(config, seed=seed)
    experiment = ExperimentConfig(salt=SIM_EXPERIMENT_SALT, control_share=config.control_share)
    rows: list[dict[str, object]] = []
    truth: list[np.ndarray] = []
    eligible: list[np.ndarray] = []
    week = 0
    k = len(actions)
    while len(rows) < n_rounds:
        prepared = prepare(
            config, draw_decision_cohort(config, population, week, rng), effects, week=week
        )
        cohort = prepared.cohort
        chosen = np.zeros(len(cohort), dtype=int)
        for i in range(len(cohort)):
            idx = np.flatnonzero(prepared.eligible[i])
            decision = policy.choose(
                prepared.features[i],
                [actions[j] for j in idx],
                event_id=f"log{seed}-w{week}-{int(cohort.serial[i])}",
            )
            chosen[i] = idx[decision.chosen]
            pmf = np.zeros(k)
            pmf[idx] = decision.pmf
            pseudonym = pseudonymise(f"sim-{seed}-{int(cohort.serial[i])}", SIM_PSEUDONYM_KEY)
            rows.append(
                {
                    "action": int(chosen[i]),
                    "propensity": decision.propensity,
                    **{f"pmf_{j}": float(pmf[j]) for j in range(k)},
                    "timestamp": week,
                    **prepared.features[i],
                    "protected_gender": GENDERS[int(cohort.gender[i])].value,
                    "protected_origin": ORIGINS[int(cohort.origin[i])].value,
                    "protected_age_band": age_band(int(cohort.age[i])),
                    "rct_group": experiment.group_of(pseudonym).value,
                }
            )
        realised = sample_outcomes(
            prepared.paths(chosen),
            config.non_employment(prepared.cohort.group),
            config.horizon_weeks,
            rng,
        )
        for i, employed in enumerate(realised.employed):
            rows[len(rows) - len(cohort) + i]["reward"] = float(employed)
        truth.append(prepared.p_job)
        eligible.append(prepared.eligible)
        week += 1
    frame = pd.DataFrame(rows[:n_rounds])
    order = ["action", "reward", "propensity"]
    frame = frame[order + [c for c in frame.columns if c not in order]]
    return SimulatedLogs(
        frame=frame,
        expected_reward_matrix=np.concatenate(truth)[:n_rounds],
        eligible=np.concatenate(eligible)[:n_rounds],
        action_ids=tuple(a.id for a in arms),
        action_families=tuple(a.family.value for a in arms),
        logging_policy=policy.name,
    )

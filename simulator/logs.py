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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bandit.catalog import Catalog, default_catalog
from bandit.context import age_band
from bandit.control import ExperimentConfig
from bandit.errors import InvalidInputError
from bandit.policies import Policy
from bandit.privacy import pseudonymise
from bandit.types import Action
from simulator.arrivals import draw_decision_cohort, prepare
from simulator.config import SimulationConfig
from simulator.outcomes import ArmEffects, arm_effects, sample_outcomes, select_arms
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
        meta = _meta(
            self.action_ids, self.action_families, self.logging_policy, self.context_columns
        )
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
    run = _LogRun.start(n_rounds, logging_policy, floor, config, seed, catalog)
    blocks = list(run.blocks())
    return SimulatedLogs(
        frame=pd.concat([b.frame for b in blocks], ignore_index=True),
        expected_reward_matrix=np.concatenate([b.truth for b in blocks]),
        eligible=np.concatenate([b.eligible for b in blocks]),
        action_ids=run.action_ids,
        action_families=run.action_families,
        logging_policy=run.policy.name,
    )


@dataclass(frozen=True, slots=True)
class LogBlock:
    """One simulated week of a log: its rows, their truth and eligibility."""

    frame: pd.DataFrame
    truth: np.ndarray
    eligible: np.ndarray


@dataclass(frozen=True)
class _LogRun:
    """What a log is simulated from; :meth:`blocks` yields it week by week."""

    n_rounds: int
    config: SimulationConfig
    seed: int
    policy: Policy
    actions: tuple[Action, ...]
    action_ids: tuple[str, ...]
    action_families: tuple[str, ...]
    effects: ArmEffects

    @classmethod
    def start(
        cls,
        n_rounds: int,
        logging_policy: str | Policy,
        floor: float,
        config: SimulationConfig | None,
        seed: int,
        catalog: Catalog | None,
    ) -> _LogRun:
        if n_rounds < 1:
            msg = f"Expected n_rounds >= 1, got {n_rounds}"
            raise InvalidInputError(msg)
        config = config or SimulationConfig(scale=0.25, offers_per_family=1, capacity_scale=0.0)
        catalog = catalog or default_catalog()
        arms = select_arms(catalog, config.offers_per_family)
        policy = (
            logging_policy
            if isinstance(logging_policy, Policy)
            else build_policy(logging_policy, seed=seed, floor=floor)
        )
        return cls(
            n_rounds=n_rounds,
            config=config,
            seed=seed,
            policy=policy,
            actions=tuple(a.as_action() for a in arms),
            action_ids=tuple(a.id for a in arms),
            action_families=tuple(a.family.value for a in arms),
            effects=arm_effects(config, catalog, arms, seed=seed),
        )

    def blocks(self) -> Iterator[LogBlock]:
        """The log week by week (the last week cut at ``n_rounds``); memory is one week's."""
        config, seed, policy, actions = self.config, self.seed, self.policy, self.actions
        rng = np.random.default_rng(seed)
        population = PopulationModel(config, seed=seed)
        experiment = ExperimentConfig(salt=SIM_EXPERIMENT_SALT, control_share=config.control_share)
        k = len(actions)
        done = 0
        week = 0
        while done < self.n_rounds:
            prepared = prepare(
                config, draw_decision_cohort(config, population, week, rng), self.effects, week=week
            )
            cohort = prepared.cohort
            n = len(cohort)
            chosen = np.zeros(n, dtype=int)
            propensity = np.zeros(n)
            pmf = np.zeros((n, k))
            groups = []
            for i in range(n):
                idx = np.flatnonzero(prepared.eligible[i])
                decision = policy.choose(
                    prepared.features[i],
                    [actions[j] for j in idx],
                    event_id=f"log{seed}-w{week}-{int(cohort.serial[i])}",
                )
                chosen[i] = idx[decision.chosen]
                propensity[i] = decision.propensity
                pmf[i, idx] = decision.pmf
                pseudonym = pseudonymise(f"sim-{seed}-{int(cohort.serial[i])}", SIM_PSEUDONYM_KEY)
                groups.append(experiment.group_of(pseudonym).value)
            realised = sample_outcomes(
                prepared.paths(chosen),
                config.non_employment(prepared.cohort.group),
                config.horizon_weeks,
                rng,
            )
            columns: dict[str, object] = {
                "action": chosen,
                "reward": np.asarray(realised.employed, dtype=float),
                "propensity": propensity,
                **{f"pmf_{j}": pmf[:, j] for j in range(k)},
                "timestamp": np.full(n, week),
            }
            features = pd.DataFrame.from_records(list(prepared.features), nrows=n)
            frame = pd.concat(
                [
                    pd.DataFrame(columns),
                    features,
                    pd.DataFrame(
                        {
                            "protected_gender": [GENDERS[int(g)].value for g in cohort.gender],
                            "protected_origin": [ORIGINS[int(o)].value for o in cohort.origin],
                            "protected_age_band": [age_band(int(a)) for a in cohort.age],
                            "rct_group": groups,
                        }
                    ),
                ],
                axis=1,
            )
            keep = min(n, self.n_rounds - done)
            yield LogBlock(
                frame=frame.iloc[:keep].reset_index(drop=True) if keep < n else frame,
                truth=prepared.p_job[:keep],
                eligible=prepared.eligible[:keep],
            )
            done += keep
            week += 1


ROW_GROUP_ROWS = 65_536
"""Rows per Parquet row group of a streamed log (the evaluation reads one group at a time)."""


@dataclass(frozen=True, slots=True)
class StreamedLogs:
    """What :func:`write_logs_streamed` wrote (the rows themselves are only on disk)."""

    path: Path
    n_rounds: int
    action_ids: tuple[str, ...]
    action_families: tuple[str, ...]
    logging_policy: str
    context_columns: tuple[str, ...]


def write_logs_streamed(
    path: str | Path,
    n_rounds: int,
    *,
    logging_policy: str | Policy = "practice",
    floor: float = 0.05,
    config: SimulationConfig | None = None,
    seed: int = 0,
    catalog: Catalog | None = None,
    row_group_rows: int = ROW_GROUP_ROWS,
    observers: Sequence[Callable[[LogBlock], None]] = (),
) -> StreamedLogs:
    """Simulate a log as :func:`generate_logs` does and write it as it goes, in bounded memory.

    The Parquet file gets row groups of ``row_group_rows`` rows, ``<stem>.truth.npz`` the same
    arrays as :meth:`SimulatedLogs.write` (written row by row into the archive) and
    ``<stem>.meta.json`` the same fields; the file holds exactly the rows
    ``generate_logs(n_rounds, ...)`` returns. Each block is also handed to ``observers`` (for
    summaries). Memory is one week of rounds plus one row group, whatever ``n_rounds`` is.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     out = write_logs_streamed(Path(d) / "l.parquet", 300, seed=1, row_group_rows=128)
    ...     same = generate_logs(300, seed=1).frame.equals(pd.read_parquet(out.path))
    >>> same, out.n_rounds
    (True, 300)
    """
    if row_group_rows < 1:
        msg = f"Expected row_group_rows >= 1, got {row_group_rows}"
        raise InvalidInputError(msg)
    target = Path(path)
    if target.suffix.lower() not in (".parquet", ".pq"):
        msg = f"Expected a .parquet file for a streamed log, got {target.name}"
        raise InvalidInputError(msg)
    target.parent.mkdir(parents=True, exist_ok=True)
    run = _LogRun.start(n_rounds, logging_policy, floor, config, seed, catalog)
    k = len(run.actions)
    stem = target.with_suffix("")
    pending: list[pd.DataFrame] = []
    held = 0
    writer: Any = None
    context: tuple[str, ...] = ()
    with _NpzRowWriter(Path(f"{stem}.truth.npz"), n_rounds, k) as truth:
        for block in run.blocks():
            for observe in observers:
                observe(block)
            truth.append(block.truth, block.eligible)
            pending.append(block.frame)
            held += len(block.frame)
            if held >= row_group_rows:
                writer = _flush(target, writer, pending, row_group_rows, final=False)
                held = sum(len(f) for f in pending)
            if not context:
                context = _context_columns(block.frame)
        writer = _flush(target, writer, pending, row_group_rows, final=True)
        if writer is not None:
            writer.close()
    Path(f"{stem}.meta.json").write_text(
        json.dumps(_meta(run.action_ids, run.action_families, run.policy.name, context), indent=2)
    )
    return StreamedLogs(
        target, n_rounds, run.action_ids, run.action_families, run.policy.name, context
    )


def _context_columns(frame: pd.DataFrame) -> tuple[str, ...]:
    skip = {"action", "reward", "propensity", "timestamp", *AUDIT_COLUMNS}
    return tuple(str(c) for c in frame.columns if c not in skip and not str(c).startswith("pmf_"))


def _meta(
    ids: Sequence[str], families: Sequence[str], policy: str, context: Sequence[str]
) -> dict[str, object]:
    return {
        "action_ids": list(ids),
        "action_families": list(families),
        "logging_policy": policy,
        "context_columns": list(context),
        "audit_columns": list(AUDIT_COLUMNS),
        "reward": "employed within the horizon (weeks) of the decision",
    }


def _flush(
    target: Path,
    writer: Any,
    pending: list[pd.DataFrame],
    rows: int,
    *,
    final: bool,
) -> Any:
    """Write whole row groups of ``rows`` from ``pending`` (all of it when ``final``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not pending:
        return writer
    frame = pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0]
    cut = len(frame) if final else (len(frame) // rows) * rows
    pending.clear()
    if cut < len(frame):
        pending.append(frame.iloc[cut:].reset_index(drop=True))
    if cut == 0:
        return writer
    table = pa.Table.from_pandas(frame.iloc[:cut], preserve_index=False)
    if writer is None:
        writer = pq.ParquetWriter(target, table.schema)
    else:
        table = table.cast(writer.schema)
    writer.write_table(table, row_group_size=rows)
    return writer


class _NpzRowWriter:
    """``<stem>.truth.npz`` (``expected_reward_matrix``, ``eligible``) written row block by row
    block: the first member is deflated into the archive as it comes, the eligibility waits in a
    temporary file (one byte per cell) and is copied in at the end. ``np.load`` reads it as it
    reads ``np.savez_compressed``'s."""

    def __init__(self, path: Path, n_rounds: int, k: int) -> None:
        self.path, self.shape = path, (n_rounds, k)

    def __enter__(self) -> _NpzRowWriter:
        import tempfile
        import zipfile

        self._zip = zipfile.ZipFile(self.path, "w", compression=zipfile.ZIP_DEFLATED)
        self._truth = self._zip.open("expected_reward_matrix.npy", "w", force_zip64=True)
        _npy_header(self._truth, np.dtype(np.float64), self.shape)
        self._eligible = tempfile.TemporaryFile(dir=self.path.parent)
        return self

    def append(self, truth: np.ndarray, eligible: np.ndarray) -> None:
        self._truth.write(np.ascontiguousarray(truth, dtype=np.float64).tobytes())
        self._eligible.write(np.ascontiguousarray(eligible, dtype=np.bool_).tobytes())

    def __exit__(self, *exc: object) -> None:
        import shutil

        self._truth.close()
        with self._zip.open("eligible.npy", "w", force_zip64=True) as out:
            _npy_header(out, np.dtype(np.bool_), self.shape)
            self._eligible.seek(0)
            shutil.copyfileobj(self._eligible, out, 1 << 22)
        self._eligible.close()
        self._zip.close()


def _npy_header(out: Any, dtype: np.dtype[Any], shape: tuple[int, int]) -> None:
    fmt = np.lib.format
    fmt.write_array_header_2_0(
        out, {"descr": fmt.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    )

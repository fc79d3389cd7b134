"""Evaluation of logs bigger than memory: a Parquet log read one chunk of rows at a time.

:func:`evaluate_file` gives the same :class:`~offline_eval.evaluation.PolicyEvaluation` as the
in-memory path (``read_logs`` + ``evaluate_target`` / ``evaluate_named``) while holding only
one chunk of the ``(n, K)`` matrices (logger pmf, target probabilities, reward-model
predictions, truth) at a time:

* a cheap pass over the small columns gathers the row count, the categories of the text
  context columns (for the one-hot encoding ``LoggedBandit.from_dataframe`` does), the
  actions seen and whether the logger is uniform;
* each reward model is fitted once per evaluated range in two more cheap passes
  (:meth:`~offline_eval.reward_model.RidgeRewardModel.fit`) and shared by DM, DR, SNDR and
  Switch-DR;
* one pass over all columns computes, per chunk and target, the target probabilities
  (vectorised for static policies, :class:`~bandit.policies.batch.BatchProbabilities`) and
  keeps per round only what the estimators combine (:class:`~offline_eval.estimators.base.RoundTerms`):
  the target's probability of the logged action and the DM value, 16 bytes per round and
  target, plus the logger's second moment as one ``K``-vector per weight variant;
* every estimator then runs its own ``from_terms`` on those arrays, so point estimates and
  intervals (analytic, robust and bootstrap alike) are those of the in-memory path up to
  floating-point summation order.

Memory is the chunk (``chunk_rows x K`` float64 matrices) plus about ``32 + 16 x targets``
bytes per evaluated round; time is linear in the rows.
"""

from __future__ import annotations

import math
import queue
import threading
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import numpy as np
import pandas as pd

from bandit.policies import POLICY_REGISTRY, make_policy
from bandit.policies.base import Policy, StaticPolicy
from bandit.policies.batch import BatchProbabilities
from bandit.types import Action, Decision, FeatureValue
from offline_eval.ci import CIConfig, intervals
from offline_eval.diagnostics import weight_diagnostics
from offline_eval.errors import LoggedDataError, TargetPolicyError
from offline_eval.estimators import BaseEstimator, Replay
from offline_eval.estimators.base import RoundTerms, logger_weight_sums, per_action_moment
from offline_eval.evaluation import PolicyEvaluation, estimators_by_name
from offline_eval.logs import (
    AUDIT_PREFIX,
    PMF_PREFIX,
    RESERVED_COLUMNS,
    LoggedBandit,
    check_probability_matrix,
    read_action_features,
)
from offline_eval.reward_model import RidgeRewardModel
from offline_eval.targets import ALWAYS_PREFIX

CHUNK_ROWS = 8192
"""Rows per chunk: a chunk's ``(rows, K)`` float64 matrices are ~20 MB each at K = 330 (the
per-chunk Python overhead is then negligible; smaller chunks were not faster)."""
READ_ROWS = 65_536
"""Rows per Arrow batch read from the file (chunks are slices of it): the simulator's row
group, which decodes in 40 % less CPU than two half batches (measured on the K = 330 log)."""


# ---------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Chunk:
    """Rows ``start .. start + n`` of a log: validated arrays, raw context, optional truth."""

    start: int
    logs: LoggedBandit
    batch: Any = None
    """The chunk's Arrow record batch (raw context columns)."""
    raw_columns: tuple[str, ...] = ()
    truth: np.ndarray | None = None

    @cached_property
    def eligible(self) -> np.ndarray:
        """Boolean ``(n, K)``: logger pmf > 0 (all actions when the log has no pmf)."""
        return _eligible(self.logs)

    @cached_property
    def eligible_float(self) -> np.ndarray:
        """:attr:`eligible` as 0.0 / 1.0 (one pass over the pmf)."""
        logs = self.logs
        if logs.pmf is None:
            return np.ones((logs.n_rounds, logs.n_actions))
        out = np.empty(logs.pmf.shape)
        np.greater(logs.pmf, 0.0, out=out, casting="unsafe")
        return out

    @cached_property
    def raw(self) -> dict[str, np.ndarray]:
        """The raw context columns by name (see :meth:`columns`), converted once."""
        return self.columns()

    def columns(self) -> dict[str, np.ndarray]:
        """The raw context columns by name, each shape ``(n,)`` (text as object arrays)."""
        return {c: self.batch.column(c).to_numpy(zero_copy_only=False) for c in self.raw_columns}

    def records(self) -> list[dict[str, FeatureValue]]:
        """The raw context of each round, as ``read_frame(...).to_dict("records")`` gives it."""
        frame = self.batch.select(list(self.raw_columns)).to_pandas()
        return [{str(k): v for k, v in row.items()} for row in frame.to_dict(orient="records")]


@dataclass(frozen=True)
class LogFile:
    """A Parquet log read in chunks (see the module docstring).

    Use :meth:`open`; ``categories`` fixes the one-hot encoding of text context columns over
    the whole file, so every chunk has the same context columns as ``read_logs`` gives.
    """

    path: Path
    n_rounds: int
    n_actions: int
    pmf_columns: tuple[str, ...]
    raw_columns: tuple[str, ...]
    categories: Mapping[str, tuple[str, ...]]
    action_features: tuple[dict[str, str | float], ...]
    has_position: bool
    row_groups: tuple[int, ...]
    """Rows per row group."""
    truth_path: Path | None = None

    @classmethod
    def open(cls, path: str | Path, *, with_truth: bool = True) -> LogFile:
        """Scan the small columns of the Parquet file at ``path`` once."""
        import pyarrow.parquet as pq

        p = Path(path)
        if not p.exists():
            msg = f"No such file: {p}"
            raise LoggedDataError(msg)
        meta = pq.ParquetFile(p)
        names = list(meta.schema_arrow.names)
        missing = [c for c in ("action", "reward", "propensity") if c not in names]
        if missing:
            msg = f"Missing required column(s): {', '.join(missing)} (have: {', '.join(names)})"
            raise LoggedDataError(msg)
        pmf = sorted(
            (c for c in names if c.startswith(PMF_PREFIX)), key=lambda c: int(c[len(PMF_PREFIX) :])
        )
        raw = tuple(
            c
            for c in names
            if c not in RESERVED_COLUMNS and not c.startswith((PMF_PREFIX, AUDIT_PREFIX))
        )
        text = [c for c in raw if not _is_numeric(meta.schema_arrow.field(c).type)]
        seen: dict[str, set[str]] = {c: set() for c in text}
        max_action = -1
        for batch in meta.iter_batches(
            batch_size=1 << 16, columns=["action", *text], use_threads=False
        ):
            actions = _actions(batch.column("action").to_numpy(zero_copy_only=False))
            max_action = max(max_action, int(actions.max(initial=-1)))
            for c in text:
                seen[c].update(str(v) for v in pd.unique(batch.column(c).to_pandas().dropna()))
        features = read_action_features(p)
        k = len(features) or len(pmf) or max_action + 1
        truth = p.with_name(p.stem + ".truth.npz")
        groups = tuple(meta.metadata.row_group(i).num_rows for i in range(meta.num_row_groups))
        return cls(
            path=p,
            n_rounds=int(sum(groups)),
            n_actions=k,
            pmf_columns=tuple(pmf),
            raw_columns=raw,
            categories={c: tuple(sorted(seen[c])) for c in text},
            action_features=features,
            has_position="position" in names,
            row_groups=groups,
            truth_path=truth if with_truth and truth.is_file() else None,
        )

    @property
    def context_columns(self) -> tuple[str, ...]:
        """Encoded context columns, as ``LoggedBandit.from_dataframe`` names them."""
        numeric = [c for c in self.raw_columns if c not in self.categories]
        dummies = [
            f"{c}_{v}" for c in self.raw_columns if c in self.categories for v in self.categories[c]
        ]
        return (*numeric, *dummies)

    def column(self, name: str, start: int, stop: int) -> Iterator[np.ndarray]:
        """One numeric column over rounds ``start .. stop``, in blocks (no validation)."""
        import pyarrow.parquet as pq

        offset = 0
        parquet = pq.ParquetFile(self.path)
        for batch in parquet.iter_batches(batch_size=1 << 16, columns=[name], use_threads=False):
            lo, hi = max(start - offset, 0), min(stop - offset, batch.num_rows)
            offset += batch.num_rows
            if hi > lo:
                values = batch.column(0).slice(lo, hi - lo).to_numpy(zero_copy_only=False)
                yield np.asarray(values, dtype=float)

    def chunks(
        self,
        start: int,
        stop: int,
        *,
        pmf: bool = True,
        raw: bool = False,
        truth: bool = False,
        rows: int = CHUNK_ROWS,
    ) -> Iterator[Chunk]:
        """Chunks of at most ``rows`` rows covering rounds ``start .. stop`` in order.

        The Parquet decoding, the conversion to arrays and their validation run on a reader
        thread one chunk ahead (pyarrow and numpy release the GIL), so the second core decodes
        while this one computes; at most :data:`PREFETCH` chunks wait between the two.
        """
        if PREFETCH < 1:
            return self._read_chunks(start, stop, pmf, raw, truth, rows)
        return _prefetched(lambda: self._read_chunks(start, stop, pmf, raw, truth, rows))

    def _read_chunks(  # noqa: PLR0913 (chunks' arguments)
        self, start: int, stop: int, pmf: bool, raw: bool, truth: bool, rows: int
    ) -> Iterator[Chunk]:
        import pyarrow.parquet as pq

        columns = ["action", "reward", "propensity", *self.raw_columns]
        columns += ["position"] if self.has_position else []
        columns += list(self.pmf_columns) if pmf else []
        ends = np.cumsum((0, *self.row_groups))
        first = int(np.searchsorted(ends, start, side="right")) - 1
        last = int(np.searchsorted(ends, stop, side="left"))
        groups = list(range(max(first, 0), min(last, len(self.row_groups))))
        offset = int(ends[groups[0]]) if groups else stop
        reader = _TruthRows(self.truth_path, self.n_actions) if truth and self.truth_path else None
        try:
            parquet = pq.ParquetFile(self.path)
            batches = parquet.iter_batches(  # one thread: the machine's cores do the rest
                batch_size=max(rows, READ_ROWS),
                row_groups=groups,
                columns=columns,
                use_threads=False,
            )
            for batch in batches:
                lo, hi = max(start - offset, 0), min(stop - offset, batch.num_rows)
                base = offset
                offset += batch.num_rows
                if hi <= lo:
                    continue
                small = self._small_columns(batch.slice(lo, hi - lo))
                for a in range(lo, hi, rows):
                    b = min(a + rows, hi)
                    part = batch.slice(a, b - a)
                    chunk = Chunk(
                        start=base + a,
                        logs=self._logs(
                            part, pmf, {k: v[a - lo : b - lo] for k, v in small.items()}
                        ),
                        batch=part if raw else None,
                        raw_columns=self.raw_columns,
                        truth=None if reader is None else reader.read(base + a, base + b),
                    )
                    if pmf and self.pmf_columns:  # computed here, on the reader thread
                        _ = chunk.eligible, chunk.eligible_float
                    yield chunk
        finally:
            if reader is not None:
                reader.close()

    def _small_columns(self, batch: Any) -> dict[str, np.ndarray]:
        """Action, reward, propensity, position and the encoded context of a record batch."""
        import pyarrow as pa
        import pyarrow.compute as pc

        n = batch.num_rows
        context = np.empty((n, len(self.context_columns)))
        j = 0
        for c in self.raw_columns:
            if c not in self.categories:
                context[:, j] = _floats(batch.column(c))
                j += 1
        for c, values in self.categories.items():
            codes = pc.fill_null(
                pc.index_in(batch.column(c).cast(pa.string()), pa.array(values)), -1
            )
            context[:, j : j + len(values)] = (
                np.asarray(codes)[:, None] == np.arange(len(values))[None, :]
            )
            j += len(values)
        out = {
            "context": context,
            "action": _actions(batch.column("action").to_numpy(zero_copy_only=False)),
            "reward": _floats(batch.column("reward")),
            "propensity": _floats(batch.column("propensity")),
        }
        if self.has_position:
            out["position"] = batch.column("position").to_numpy(zero_copy_only=False)
        return out

    def _logs(self, batch: Any, pmf: bool, small: Mapping[str, np.ndarray]) -> LoggedBandit:
        import pyarrow as pa

        matrix = None
        if pmf and self.pmf_columns:
            block = batch.select(list(self.pmf_columns))
            if all(pa.types.is_float64(t) for t in block.schema.types):  # one C++ copy
                matrix = np.asarray(block.to_tensor(null_to_nan=True, row_major=True))
            else:
                matrix = np.empty((batch.num_rows, len(self.pmf_columns)))
                for i, c in enumerate(self.pmf_columns):
                    matrix[:, i] = _floats(batch.column(c))
        return LoggedBandit(
            context=small["context"],
            action=small["action"],
            reward=small["reward"],
            propensity=small["propensity"],
            n_actions=self.n_actions,
            position=small.get("position"),
            pmf=matrix,
            context_columns=self.context_columns,
            action_features=self.action_features,
        )


PREFETCH = 2
"""Chunks decoded ahead of the computation (each ``rows x K`` floats; bounds the memory)."""


def _prefetched(produce: Callable[[], Iterator[Chunk]]) -> Iterator[Chunk]:
    """The items of ``produce()``, produced on a reader thread at most :data:`PREFETCH` ahead.

    An exception of the reader is raised here; closing this generator early stops the reader.
    """
    reader = _Reader(produce)
    thread = threading.Thread(target=reader.run, name="nbi-parquet-reader", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = reader.items.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        reader.stop.set()
        thread.join()


class _Reader:
    """The reader thread's side of :func:`_prefetched`."""

    def __init__(self, produce: Callable[[], Iterator[Chunk]]) -> None:
        self.produce = produce
        self.items: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=PREFETCH)
        self.stop = threading.Event()

    def put(self, item: tuple[str, Any]) -> bool:
        """Queue ``item``, waiting for room; False once the consumer has stopped."""
        while not self.stop.is_set():
            try:
                self.items.put(item, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def run(self) -> None:
        try:
            for chunk in self.produce():
                if not self.put(("chunk", chunk)):
                    return
        except BaseException as exc:  # noqa: BLE001 (handed to the consumer, raised there)
            self.put(("error", exc))
            return
        self.put(("done", None))


def _floats(col: Any) -> np.ndarray:
    """An Arrow column as float64 (text coerced, as ``pd.to_numeric(errors="coerce")``)."""
    import pyarrow as pa

    if pa.types.is_floating(col.type) or pa.types.is_integer(col.type):
        return np.asarray(col.to_numpy(zero_copy_only=False), dtype=float)
    values: np.ndarray = pd.to_numeric(col.to_pandas(), errors="coerce").to_numpy(float)
    return values


def _is_numeric(arrow_type: Any) -> bool:
    import pyarrow as pa

    t = pa.types
    return bool(
        t.is_integer(arrow_type)
        or t.is_floating(arrow_type)
        or t.is_boolean(arrow_type)
        or t.is_decimal(arrow_type)
    )


def _actions(raw: np.ndarray) -> np.ndarray:
    if np.issubdtype(raw.dtype, np.integer):
        return raw.astype(np.int64)
    as_float = pd.to_numeric(pd.Series(raw), errors="coerce").to_numpy(dtype=float)
    if not np.all(np.isfinite(as_float)) or not np.all(as_float == np.round(as_float)):
        msg = "Expected integer action indices in column `action`"
        raise LoggedDataError(msg)
    return as_float.astype(np.int64)


class _TruthRows:
    """Rows of ``expected_reward_matrix`` in a ``.truth.npz``, read forward without loading it."""

    def __init__(self, path: Path, k: int) -> None:
        self._zip = zipfile.ZipFile(path)
        self._file: BinaryIO = self._zip.open("expected_reward_matrix.npy")  # type: ignore[assignment]
        fmt = np.lib.format
        version = fmt.read_magic(self._file)
        shape, fortran, dtype = (
            fmt.read_array_header_1_0(self._file)
            if version == (1, 0)
            else fmt.read_array_header_2_0(self._file)
        )
        if fortran or len(shape) != 2 or shape[1] != k:  # noqa: PLR2004
            msg = f"{path.name}: expected a C-order (n_rounds, {k}) truth matrix, got {shape}"
            raise LoggedDataError(msg)
        self.n_rounds = int(shape[0])
        self._dtype = np.dtype(dtype)
        self._k = k
        self._row = 0

    def read(self, start: int, stop: int) -> np.ndarray:
        if start < self._row or stop > self.n_rounds:
            msg = f"truth rows {start}..{stop} out of order or beyond {self.n_rounds}"
            raise LoggedDataError(msg)
        width = self._k * self._dtype.itemsize
        while self._row < start:  # skip forward
            step = min(start - self._row, 1 << 14)
            self._file.read(step * width)
            self._row += step
        data = self._file.read((stop - start) * width)
        self._row = stop
        return np.frombuffer(data, dtype=self._dtype).reshape(stop - start, self._k).astype(float)

    def close(self) -> None:
        self._file.close()
        self._zip.close()


# ---------------------------------------------------------------------------- targets


class ChunkTarget(Protocol):
    """A target policy's probabilities, one chunk at a time."""

    name: str
    note: str
    within_eligible: bool
    """Whether the probabilities are 0 outside the logger's eligible actions by construction
    (then no mass is unsupported and that sum is skipped)."""

    def probs(self, chunk: Chunk) -> np.ndarray:
        """``(n, K)`` target probabilities of the chunk's rounds."""
        ...


@dataclass
class ArrayTarget:
    """Probabilities from a ``.npy`` file of shape ``(n_rounds, K)``, read row block by block."""

    name: str
    path: Path
    n_rounds: int
    n_actions: int
    note: str = ""
    within_eligible: bool = False
    _offset: int = field(default=0, init=False)
    _dtype: np.dtype[Any] = field(default=np.dtype(np.float64), init=False)

    def __post_init__(self) -> None:
        if not self.path.exists():
            msg = f"No such target-probabilities file: {self.path}"
            raise TargetPolicyError(msg)
        fmt = np.lib.format
        with self.path.open("rb") as f:
            try:
                version = fmt.read_magic(f)
                shape, fortran, dtype = (
                    fmt.read_array_header_1_0(f)
                    if version == (1, 0)
                    else fmt.read_array_header_2_0(f)
                )
            except ValueError as exc:
                msg = f"Cannot read {self.path.name} as a .npy array: {exc}"
                raise TargetPolicyError(msg) from None
            self._offset = f.tell()
        if fortran or tuple(shape) != (self.n_rounds, self.n_actions) or np.dtype(dtype).hasobject:
            msg = (
                f"Expected `target_probs.shape == ({self.n_rounds}, {self.n_actions})`, "
                f"got {tuple(shape)}"
            )
            raise TargetPolicyError(msg)
        self._dtype = np.dtype(dtype)

    def probs(self, chunk: Chunk) -> np.ndarray:
        n, k = chunk.logs.n_rounds, self.n_actions
        with self.path.open("rb") as f:
            f.seek(self._offset + chunk.start * k * self._dtype.itemsize)
            out = np.fromfile(f, dtype=self._dtype, count=n * k).reshape(n, k).astype(float)
        check_probability_matrix(out, n)
        return out


@dataclass
class AlwaysTarget:
    """``always:<family>``: uniform over the eligible offers of one family (see
    :func:`offline_eval.targets.always_family`)."""

    name: str
    family: str
    families: np.ndarray
    note: str = ""
    fallback: int = 0
    within_eligible: bool = True

    def probs(self, chunk: Chunk) -> np.ndarray:
        chosen: np.ndarray = chunk.eligible_float * (self.families == self.family)
        count = chosen.sum(axis=1)
        empty = count == 0
        if empty.any():
            chosen[empty] = chunk.eligible_float[empty]
            count[empty] = chosen[empty].sum(axis=1)
        self.fallback += int(empty.sum())
        chosen /= count[:, None]
        return chosen


@dataclass
class PolicyTarget:
    """A registered policy: batched for static policies that implement
    :class:`~bandit.policies.batch.BatchProbabilities`, else round by round."""

    name: str
    policy: Policy
    actions: list[Action]
    note: str = ""
    within_eligible: bool = True

    def probs(self, chunk: Chunk) -> np.ndarray:
        if chunk.batch is None:
            msg = "PolicyTarget needs the raw context of the chunk"
            raise ValueError(msg)
        eligible = chunk.eligible
        if isinstance(self.policy, BatchProbabilities):
            return self.policy.batch_probabilities(chunk.raw, chunk.eligible_float, self.actions)
        records = chunk.records()
        out = np.zeros(eligible.shape)
        for i, context in enumerate(records):
            idx = np.flatnonzero(eligible[i])
            out[i, idx] = self.policy.probabilities(context, [self.actions[int(j)] for j in idx])
        check_probability_matrix(out, chunk.logs.n_rounds)
        return out


def _eligible(logs: LoggedBandit) -> np.ndarray:
    if logs.pmf is not None:
        mask: np.ndarray = logs.pmf > 0
        return mask
    return np.ones((logs.n_rounds, logs.n_actions), dtype=bool)


def _train(policy: Policy, log: LogFile, stop: int, actions: list[Action]) -> None:
    """Train ``policy`` on rounds ``0 .. stop`` in time order (as ``policy_target_probs``)."""
    for chunk in log.chunks(0, stop, raw=True):
        logs = chunk.logs
        mask = _eligible(logs)
        for i, context in enumerate(chunk.records()):
            a = int(logs.action[i])
            idx = np.flatnonzero(mask[i])
            if a not in idx:
                idx = np.union1d(idx, [a])
            pmf = logs.pmf[i, idx] if logs.pmf is not None else np.full(len(idx), 1.0 / len(idx))
            decision = Decision(
                event_id=f"train-{chunk.start + i}",
                context=dict(context),
                actions=tuple(actions[int(j)] for j in idx),
                pmf=tuple(float(p) for p in pmf),
                chosen=int(np.flatnonzero(idx == a)[0]),
                propensity=float(logs.propensity[i]),
                expected_rewards=tuple(0.0 for _ in idx),
                model_version="logged",
                policy="logger",
            )
            policy.learn(decision, float(logs.reward[i]), propensity=float(logs.propensity[i]))


def named_target(
    name: str, log: LogFile, cut: int, params: Mapping[str, Any] | None, note: str
) -> ChunkTarget:
    """The chunk target of a named policy trained on rounds ``0 .. cut`` (static policies do
    not learn, so they skip the training pass)."""
    feats = log.action_features or tuple({} for _ in range(log.n_actions))
    if name.startswith(ALWAYS_PREFIX):
        family = name[len(ALWAYS_PREFIX) :]
        families = np.array([str(f.get("family", "")) for f in feats])
        if family not in set(families):
            known = ", ".join(sorted(set(families))) or "none: the log carries no action families"
            msg = f"Unknown family {family!r} in always:<family> (known: {known})"
            raise TargetPolicyError(msg)
        return AlwaysTarget(name, family, families, note)
    if name not in POLICY_REGISTRY:
        known = ", ".join([*sorted(POLICY_REGISTRY), "always:<family>"])
        msg = f"Unknown target policy {name!r} (known: {known})"
        raise TargetPolicyError(msg)
    policy = make_policy(name, **dict(params or {}))
    actions = [Action(id=str(k), features=dict(feats[k])) for k in range(log.n_actions)]
    if not (isinstance(policy, StaticPolicy) and isinstance(policy, BatchProbabilities)):
        _train(policy, log, cut, actions)
    return PolicyTarget(name, policy, actions, note)


# ---------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class _StreamedMoment:
    """The logger's second moment from per-action column sums (see
    :func:`~offline_eval.estimators.base.logger_weight_sums`)."""

    action: np.ndarray
    n_actions: int
    sums: Mapping[tuple[float, float | None], np.ndarray] = field(default_factory=dict)

    def with_sums(self, sums: Mapping[tuple[float, float | None], np.ndarray]) -> _StreamedMoment:
        """The same rounds with one target's column sums."""
        return _StreamedMoment(self.action, self.n_actions, sums)

    def __call__(
        self, squared_term: np.ndarray, max_weight: float, switch_tau: float | None
    ) -> float | None:
        if self.action.shape[0] == 0:
            return None
        per_action = per_action_moment(self.action, squared_term, self.n_actions)
        total = float(np.dot(self.sums[(max_weight, switch_tau)], per_action))
        return total / int(self.action.shape[0])


@contextmanager
def single_thread_blas() -> Iterator[None]:
    """Run with one OpenBLAS thread (numpy's bundled OpenBLAS; a no-op without it).

    The chunk products (``rows x d`` by ``d x K``) are small: helper threads gain nothing and,
    on a machine whose cores are busy, spin and steal the time of the main thread (a third of
    the wall time of a 1M-round evaluation on a loaded 2-core machine).
    """
    setter = getter = None
    try:
        import ctypes

        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower()})
        for path in paths:
            lib = ctypes.CDLL(path)
            for prefix in ("scipy_openblas", "openblas"):
                for suffix in ("64_", ""):
                    if hasattr(lib, f"{prefix}_set_num_threads{suffix}"):
                        setter = getattr(lib, f"{prefix}_set_num_threads{suffix}")
                        getter = getattr(lib, f"{prefix}_get_num_threads{suffix}")
                        break
                if setter:
                    break
    except OSError:
        setter = None
    if setter is None or getter is None:
        yield
        return
    before = int(getter())
    setter(1)
    try:
        yield
    finally:
        setter(before)


def evaluate_range(
    log: LogFile,
    start: int,
    stop: int,
    targets: Sequence[ChunkTarget],
    estimators: Sequence[BaseEstimator],
    ci: CIConfig | None = None,
    *,
    chunk_rows: int = CHUNK_ROWS,
) -> list[PolicyEvaluation]:
    """Evaluate ``targets`` on rounds ``start .. stop`` of ``log`` in one pass over the rows.

    Parameters
    ----------
    log
        The log.
    start, stop
        The evaluated rounds.
    targets
        Target policies, evaluated together.
    estimators
        Estimators; the model-based ones must use a :class:`RidgeRewardModel`.
    ci
        Interval method.
    chunk_rows
        Rows per chunk.
    """
    n, k = stop - start, log.n_actions
    fitted = {
        m: m.fit(lambda: (c.logs for c in log.chunks(start, stop, pmf=False, rows=1 << 16)), n, k)
        for m in _models(estimators)
    }
    variants = sorted({e.logger_variant() for e in estimators}, key=str)
    taus = sorted({tau for mw, tau in variants if tau is not None and math.isinf(mw)})
    rounds = _Rounds.empty(n, k, list(fitted))
    accs = [
        _Accumulator(
            t,
            np.empty(n),
            {m: np.empty(n) for m in fitted},
            {v: np.zeros(k) for v in variants},
            track_max=any(isinstance(e, Replay) for e in estimators),
        )
        for t in targets
    ]
    seen = np.zeros(k, dtype=bool)
    if not log.pmf_columns:
        for c in log.chunks(start, stop, pmf=False, rows=1 << 16):
            seen[c.logs.action] = True
    needs_raw = any(isinstance(t, PolicyTarget) for t in targets)
    truth = log.truth_path is not None
    for chunk in log.chunks(start, stop, raw=needs_raw, truth=truth, rows=chunk_rows):
        lo = chunk.start - start
        q = {m: f.predict(chunk.logs, lo) for m, f in fitted.items()}
        rounds.add(lo, chunk.logs, q)
        shared = _ChunkShared(chunk, seen, taus)
        for acc in accs:
            acc.add(lo, chunk, q, shared)
    moment = _StreamedMoment(rounds.action, k) if log.pmf_columns else None
    return [acc.result(rounds, estimators, ci, moment, with_truth=truth) for acc in accs]


@dataclass(frozen=True)
class _Rounds:
    """The logged rounds of the evaluated range and each model's residual, per round."""

    action: np.ndarray
    reward: np.ndarray
    propensity: np.ndarray
    residual: dict[RidgeRewardModel, np.ndarray]
    n_actions: int

    @classmethod
    def empty(cls, n: int, k: int, models: Sequence[RidgeRewardModel]) -> _Rounds:
        return cls(
            np.empty(n, dtype=np.int64),
            np.empty(n),
            np.empty(n),
            {m: np.empty(n) for m in models},
            k,
        )

    def add(self, lo: int, logs: LoggedBandit, q: Mapping[RidgeRewardModel, np.ndarray]) -> None:
        hi = lo + logs.n_rounds
        self.action[lo:hi], self.reward[lo:hi] = logs.action, logs.reward
        self.propensity[lo:hi] = logs.propensity
        rows = np.arange(logs.n_rounds)
        for m, qm in q.items():
            self.residual[m][lo:hi] = logs.reward - qm[rows, logs.action]


@dataclass
class _Accumulator:
    """What one target keeps while the log streams by."""

    target: ChunkTarget
    picked: np.ndarray
    dm: dict[RidgeRewardModel, np.ndarray]
    moments: dict[tuple[float, float | None], np.ndarray]
    unsupported_rows: int = 0
    unsupported_mass: float = 0.0
    truth_sum: float = 0.0
    max_target: float = -math.inf
    track_max: bool = True

    def add(
        self,
        lo: int,
        chunk: Chunk,
        q: Mapping[RidgeRewardModel, np.ndarray],
        shared: _ChunkShared,
    ) -> None:
        logs = chunk.logs
        hi = lo + logs.n_rounds
        pi = self.target.probs(chunk)
        self.picked[lo:hi] = pi[np.arange(logs.n_rounds), logs.action]
        for m, qm in q.items():
            self.dm[m][lo:hi] = np.einsum("ij,ij->i", pi, qm)
        pi_max = None
        if self.track_max:
            pi_max = float(pi.max(initial=0.0))
            self.max_target = max(self.max_target, pi_max)
        shared.moments(pi, self.moments, pi_max)
        if not self.target.within_eligible:
            mass = np.einsum("ij,ij->i", pi, shared.never())
            self.unsupported_rows += int((mass > 0).sum())
            self.unsupported_mass += float(mass.sum())
        if chunk.truth is not None:
            self.truth_sum += float(np.einsum("ij,ij->i", pi, chunk.truth).sum())

    def result(
        self,
        rounds: _Rounds,
        estimators: Sequence[BaseEstimator],
        ci: CIConfig | None,
        moment: _StreamedMoment | None,
        *,
        with_truth: bool,
    ) -> PolicyEvaluation:
        n = rounds.action.shape[0]
        logger = None if moment is None else moment.with_sums(self.moments)
        rewards = []
        for est in estimators:
            m = est.model()
            model = m if isinstance(m, RidgeRewardModel) else None
            terms = RoundTerms(
                action=rounds.action,
                reward=rounds.reward,
                propensity=rounds.propensity,
                picked=self.picked,
                n_actions=rounds.n_actions,
                max_target=self.max_target if n else 1.0,
                dm=None if model is None else self.dm[model],
                residual=None if model is None else rounds.residual[model],
                logger_moment=logger,
            )
            rewards.append(est.from_terms(terms))
        # as evaluate_target: the exact bootstrap shares one set of weights between estimators
        results = intervals(rewards, ci, [e.name for e in estimators])
        note = self.target.note
        if isinstance(self.target, AlwaysTarget):
            note = note.replace("{fallback}", str(self.target.fallback))
        return PolicyEvaluation(
            policy=self.target.name,
            estimates=tuple(results),
            diagnostics=weight_diagnostics(
                self.picked / rounds.propensity,
                unsupported_share=self.unsupported_rows / n if n else 0.0,
                unsupported_mass=self.unsupported_mass / n if n else 0.0,
            ),
            n_rounds=n,
            logged_value=float(rounds.reward.mean()),
            note=note,
            true_value=self.truth_sum / n if with_truth else None,
        )


class _ChunkShared:
    """Per-chunk matrices every target reuses: ``1 / mu`` where the logger can act (else 0),
    ``tau mu`` per Switch threshold (``inf`` where it cannot; only for chunks where a weight
    can exceed ``tau``) and the unsupported mask."""

    def __init__(self, chunk: Chunk, seen: np.ndarray, taus: Sequence[float]) -> None:
        self.pmf = chunk.logs.pmf
        self._chunk, self._seen = chunk, seen
        self.inv_pmf: np.ndarray | None = None
        self._taus = taus
        self._tau_pmf: dict[float, np.ndarray] = {}
        self._max_inv = math.inf
        if self.pmf is None:
            return
        # 1 / mu on the logger's support, 0 elsewhere (0 / tiny = 0; faster than a masked divide)
        self.inv_pmf = chunk.eligible_float / np.maximum(self.pmf, np.finfo(float).tiny)
        if taus:
            self._max_inv = float(self.inv_pmf.max(initial=0.0))

    def tau_pmf(self, tau: float) -> np.ndarray:
        """``tau mu`` (``w > tau  <=>  pi > tau mu``), computed once per chunk and ``tau``."""
        if tau not in self._tau_pmf and self.pmf is not None:
            self._tau_pmf[tau] = self.pmf * tau
        return self._tau_pmf[tau]

    def never(self) -> np.ndarray:
        """``1.0`` where the logger never takes the action (pmf 0, or unseen without a pmf)."""
        logs = self._chunk.logs
        if self.pmf is None:
            return np.broadcast_to((~self._seen).astype(float), (logs.n_rounds, logs.n_actions))
        out: np.ndarray = (~self._chunk.eligible).astype(float)
        return out

    def moments(
        self,
        pi: np.ndarray,
        sums: dict[tuple[float, float | None], np.ndarray],
        pi_max: float | None = None,
    ) -> None:
        """Add ``sum_i mu w^2 = sum_i pi^2 / mu`` per action for each weight variant
        ``(max_weight, tau)`` (:func:`~offline_eval.estimators.base.logger_weight_sums`).

        ``pi_max`` (the chunk's largest target probability, computed when missing) skips the
        search for weights above ``tau`` when ``max(pi) max(1 / mu)`` cannot exceed it."""
        if self.pmf is None or self.inv_pmf is None:
            return
        full: np.ndarray | None = None
        for (max_weight, tau), total in sums.items():
            if math.isinf(max_weight):
                if full is None:
                    full = np.einsum("ij,ij,ij->j", pi, pi, self.inv_pmf)
                total += full
                if tau is None:
                    continue
                if pi_max is None:
                    pi_max = float(pi.max(initial=0.0))
                if pi_max * self._max_inv * (1.0 + 1e-9) <= tau:  # no weight above tau
                    continue
                above = pi > self.tau_pmf(tau)
                if above.any():  # drop the (rare) weights above tau
                    rows, cols = np.nonzero(above)
                    dropped = pi[rows, cols] ** 2 * self.inv_pmf[rows, cols]
                    total -= np.bincount(cols, weights=dropped, minlength=total.shape[0])
                continue
            total += logger_weight_sums(self.pmf, pi, max_weight=max_weight, switch_tau=tau)


def _models(estimators: Sequence[BaseEstimator]) -> list[RidgeRewardModel]:
    out: list[RidgeRewardModel] = []
    for est in estimators:
        m = est.model()
        if m is None:
            continue
        if not isinstance(m, RidgeRewardModel):
            msg = (
                f"Streamed evaluation fits RidgeRewardModel only; {est.name} has {type(m).__name__}"
            )
            raise TypeError(msg)
        if m not in out:
            out.append(m)
    return out


def evaluate_file(
    path: str | Path,
    *,
    policies: Sequence[str] = (),
    target_probs: Path | None = None,
    train_fraction: float = 0.5,
    estimator_names: Sequence[str] | None = None,
    ci: CIConfig | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    with_truth: bool = True,
    chunk_rows: int = CHUNK_ROWS,
) -> list[PolicyEvaluation]:
    """``nbi evaluate`` on a Parquet log, streamed (same results as the in-memory path).

    ``target_probs`` is evaluated on every round; named ``policies`` are trained on the first
    ``train_fraction`` of the rounds (time order) and evaluated together on the rest. The
    simulator's ``<stem>.truth.npz`` beside the log adds each target's true value.
    """
    with single_thread_blas():
        return _evaluate_file(
            path,
            policies,
            target_probs,
            train_fraction,
            estimator_names,
            ci,
            params,
            with_truth,
            chunk_rows,
        )


def _evaluate_file(  # noqa: PLR0913 (evaluate_file's arguments)
    path: str | Path,
    policies: Sequence[str],
    target_probs: Path | None,
    train_fraction: float,
    estimator_names: Sequence[str] | None,
    ci: CIConfig | None,
    params: Mapping[str, Mapping[str, Any]] | None,
    with_truth: bool,
    chunk_rows: int,
) -> list[PolicyEvaluation]:
    log = LogFile.open(path, with_truth=with_truth)
    if log.n_rounds == 0:
        msg = f"{Path(path).name} has no rounds"
        raise LoggedDataError(msg)
    _check_truth(log)
    out: list[PolicyEvaluation] = []
    if target_probs is not None:
        target = ArrayTarget(target_probs.name, target_probs, log.n_rounds, log.n_actions)
        ests = estimators_by_name(estimator_names, uniform_logger=_uniform(log, 0, log.n_rounds))
        out += evaluate_range(log, 0, log.n_rounds, [target], ests, ci, chunk_rows=chunk_rows)
    if policies:
        cut = _cut(log.n_rounds, train_fraction)
        n = log.n_rounds
        targets = []
        for name in policies:
            note = f"trained on rounds 0..{cut - 1}, evaluated on {cut}..{n - 1}"
            if name.startswith(ALWAYS_PREFIX):
                note = (
                    f"evaluated on rounds {cut}..{n - 1}; {{fallback}} rounds fell back to uniform"
                )
            targets.append(named_target(name, log, cut, (params or {}).get(name), note))
        ests = estimators_by_name(estimator_names, uniform_logger=_uniform(log, cut, n))
        out += evaluate_range(log, cut, n, targets, ests, ci, chunk_rows=chunk_rows)
    return out


def _check_truth(log: LogFile) -> None:
    if log.truth_path is None:
        return
    reader = _TruthRows(log.truth_path, log.n_actions)
    try:
        if reader.n_rounds != log.n_rounds:
            msg = (
                f"{log.truth_path.name} has {reader.n_rounds} rounds but the log has {log.n_rounds}"
            )
            raise ValueError(msg)
    finally:
        reader.close()


def _cut(n: int, train_fraction: float) -> int:
    if not 0.0 < train_fraction < 1.0:
        msg = f"Expected 0 < train_fraction < 1, got {train_fraction}"
        raise LoggedDataError(msg)
    cut = int(round(n * train_fraction))
    if cut < 1 or cut >= n:
        msg = f"Split at {train_fraction} leaves an empty part of {n} rounds"
        raise LoggedDataError(msg)
    return cut


def _uniform(log: LogFile, start: int, stop: int) -> bool:
    """Whether every propensity in the range is ``1/K`` (``np.allclose``'s tolerance)."""
    target = 1.0 / log.n_actions
    return all(np.allclose(p, target) for p in log.column("propensity", start, stop))

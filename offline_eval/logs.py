"""The logged-data contract: :class:`LoggedBandit`, its validation and its file I/O.

A logged-bandit file (Parquet or CSV) has one row per round with columns ``action`` (integer
index ``0..K-1``), ``reward``, ``propensity``, optional ``position``, optional ``pmf_<k>``
(the logger's full pmf), optional ``timestamp`` and any other columns as context.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from offline_eval.errors import LoggedDataError, TargetPolicyError

REQUIRED_COLUMNS = ("action", "reward", "propensity")
RESERVED_COLUMNS = (*REQUIRED_COLUMNS, "position", "timestamp", "rct_group", "group")
PMF_PREFIX = "pmf_"
AUDIT_PREFIX = "protected_"
"""Audit-only columns (protected attributes) never become context features."""
SUM_TOLERANCE = 1e-6


def check_same_length(**arrays: np.ndarray) -> None:
    """Raise unless every array has the same first dimension.

    Examples
    --------
    >>> check_same_length(action=np.zeros(3), propensity=np.zeros(2))
    Traceback (most recent call last):
    ...
    offline_eval.errors.LoggedDataError: Expected `action.shape[0] == propensity.shape[0]`, got 3 != 2
    """
    names = list(arrays)
    first = names[0]
    for name in names[1:]:
        if arrays[first].shape[0] != arrays[name].shape[0]:
            msg = (
                f"Expected `{first}.shape[0] == {name}.shape[0]`, "
                f"got {arrays[first].shape[0]} != {arrays[name].shape[0]}"
            )
            raise LoggedDataError(msg)


def check_propensity(propensity: np.ndarray) -> None:
    """Raise unless every propensity is finite and in ``(0, 1]``."""
    bad = ~np.isfinite(propensity) | (propensity <= 0.0) | (propensity > 1.0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        msg = (
            f"Expected every propensity in (0, 1], got {float(propensity[i])} at round {i} "
            f"({int(bad.sum())} invalid)"
        )
        raise LoggedDataError(msg)


def check_reward(reward: np.ndarray) -> None:
    """Raise unless every reward is finite (no NaN, no inf)."""
    bad = ~np.isfinite(reward)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        msg = f"Expected finite rewards, got {float(reward[i])} at round {i} ({int(bad.sum())} invalid)"
        raise LoggedDataError(msg)


def check_action(action: np.ndarray, n_actions: int) -> None:
    """Raise unless actions are integers in ``0..n_actions-1``."""
    if action.ndim != 1:
        msg = f"Expected `action.ndim == 1`, got {action.ndim}"
        raise LoggedDataError(msg)
    if action.size and (action.min() < 0 or action.max() >= n_actions):
        msg = (
            f"Expected actions in 0..{n_actions - 1}, "
            f"got values in {int(action.min())}..{int(action.max())}"
        )
        raise LoggedDataError(msg)


def check_probability_matrix(
    probs: np.ndarray,
    n_rounds: int,
    name: str = "target_probs",
    error: type[ValueError] = TargetPolicyError,
) -> None:
    """Raise unless ``probs`` has shape ``(n_rounds, K)``, is non-negative and rows sum to 1.

    Examples
    --------
    >>> check_probability_matrix(np.array([[0.5, 0.4]]), 1)
    Traceback (most recent call last):
    ...
    offline_eval.errors.TargetPolicyError: Expected every row of `target_probs` to sum to 1, got 0.9 at round 0
    """
    if probs.ndim != 2 or probs.shape[0] != n_rounds:  # noqa: PLR2004
        msg = f"Expected `{name}.shape == ({n_rounds}, n_actions)`, got {probs.shape}"
        raise error(msg)
    sums = probs.sum(axis=1)
    if not np.isfinite(sums).all() or (probs.size and probs.min() < 0):
        msg = f"Expected finite, non-negative `{name}`"
        raise error(msg)
    off = np.abs(sums - 1.0) > SUM_TOLERANCE
    if off.any():
        i = int(np.flatnonzero(off)[0])
        msg = f"Expected every row of `{name}` to sum to 1, got {sums[i]:.6g} at round {i}"
        raise error(msg)


@dataclass(frozen=True)
class LoggedBandit:
    """Logged bandit feedback: one row per round, validated at construction.

    Parameters
    ----------
    context
        Context features, shape ``(n_rounds, n_features)`` (numeric; see ``context_columns``).
    action
        Logged action index per round, shape ``(n_rounds,)``, values in ``0..n_actions-1``.
    reward
        Observed reward per round (higher is better), shape ``(n_rounds,)``.
    propensity
        Logging probability of the logged action, shape ``(n_rounds,)``, in ``(0, 1]``.
    n_actions
        Number of actions ``K``.
    position
        Optional slot position per round, shape ``(n_rounds,)``.
    pmf
        Optional full logging pmf, shape ``(n_rounds, n_actions)``.
    context_columns
        Names of the context columns (defaults ``x0, x1, ...``).
    action_features
        Optional features per action index (e.g. ``{"family": "mentor"}``).

    Examples
    --------
    >>> logs = LoggedBandit(context=np.zeros((2, 1)), action=np.array([0, 1]),
    ...                     reward=np.array([1.0, 0.0]), propensity=np.array([0.5, 0.5]),
    ...                     n_actions=2)
    >>> logs.n_rounds, logs.to_dataframe().columns.tolist()
    (2, ['action', 'reward', 'propensity', 'x0'])
    >>> LoggedBandit(context=np.zeros((2, 1)), action=np.array([0, 1]),
    ...              reward=np.array([1.0, 0.0]), propensity=np.array([0.5, 1.5]), n_actions=2)
    Traceback (most recent call last):
    ...
    offline_eval.errors.LoggedDataError: Expected every propensity in (0, 1], got 1.5 at round 1 (1 invalid)
    """

    context: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    propensity: np.ndarray
    n_actions: int
    position: np.ndarray | None = None
    pmf: np.ndarray | None = None
    context_columns: tuple[str, ...] = ()
    action_features: tuple[dict[str, str | float], ...] = ()

    def __post_init__(self) -> None:
        if self.context.ndim != 2:  # noqa: PLR2004
            msg = f"Expected `context.ndim == 2`, got {self.context.ndim}"
            raise LoggedDataError(msg)
        if self.n_actions < 1:
            msg = f"Expected n_actions >= 1, got {self.n_actions}"
            raise LoggedDataError(msg)
        arrays = {"action": self.action, "propensity": self.propensity, "reward": self.reward}
        arrays["context"] = self.context
        if self.position is not None:
            arrays["position"] = self.position
        check_same_length(**arrays)
        if not np.issubdtype(self.action.dtype, np.integer):
            msg = f"Expected integer actions, got dtype {self.action.dtype}"
            raise LoggedDataError(msg)
        check_action(self.action, self.n_actions)
        check_propensity(self.propensity)
        check_reward(self.reward)
        if self.pmf is not None:
            check_probability_matrix(self.pmf, self.n_rounds, "pmf", LoggedDataError)
            if self.pmf.shape[1] != self.n_actions:
                msg = f"Expected `pmf.shape[1] == n_actions`, got {self.pmf.shape[1]} != {self.n_actions}"
                raise LoggedDataError(msg)
        if self.context_columns and len(self.context_columns) != self.context.shape[1]:
            msg = (
                f"Expected `len(context_columns) == context.shape[1]`, "
                f"got {len(self.context_columns)} != {self.context.shape[1]}"
            )
            raise LoggedDataError(msg)
        if self.action_features and len(self.action_features) != self.n_actions:
            msg = f"Expected one action_features entry per action ({self.n_actions})"
            raise LoggedDataError(msg)

    @property
    def n_rounds(self) -> int:
        """Number of logged rounds."""
        return int(self.action.shape[0])

    @property
    def columns(self) -> tuple[str, ...]:
        """Context column names (``x0, x1, ...`` when none were given)."""
        return self.context_columns or tuple(f"x{j}" for j in range(self.context.shape[1]))

    def check_target(self, target_probs: np.ndarray) -> None:
        """Raise unless ``target_probs`` is a valid ``(n_rounds, n_actions)`` pmf matrix."""
        check_probability_matrix(target_probs, self.n_rounds)
        if target_probs.shape[1] != self.n_actions:
            msg = (
                f"Expected `target_probs.shape == ({self.n_rounds}, {self.n_actions})`, "
                f"got {target_probs.shape}"
            )
            raise TargetPolicyError(msg)

    def importance_weights(self, target_probs: np.ndarray) -> np.ndarray:
        """``pi(a_i | x_i) / propensity_i`` per round, shape ``(n_rounds,)``."""
        picked = target_probs[np.arange(self.n_rounds), self.action]
        weights: np.ndarray = picked / self.propensity
        return weights

    def subset(self, index: np.ndarray) -> LoggedBandit:
        """The rounds selected by ``index`` (boolean mask or integer indices), order kept."""
        return LoggedBandit(
            context=self.context[index],
            action=self.action[index],
            reward=self.reward[index],
            propensity=self.propensity[index],
            n_actions=self.n_actions,
            position=None if self.position is None else self.position[index],
            pmf=None if self.pmf is None else self.pmf[index],
            context_columns=self.context_columns,
            action_features=self.action_features,
        )

    def split(self, train_fraction: float) -> tuple[LoggedBandit, LoggedBandit]:
        """Split in time order: the first ``train_fraction`` of rounds, then the rest."""
        if not 0.0 < train_fraction < 1.0:
            msg = f"Expected 0 < train_fraction < 1, got {train_fraction}"
            raise LoggedDataError(msg)
        cut = int(round(self.n_rounds * train_fraction))
        if cut < 1 or cut >= self.n_rounds:
            msg = f"Split at {train_fraction} leaves an empty part of {self.n_rounds} rounds"
            raise LoggedDataError(msg)
        idx = np.arange(self.n_rounds)
        return self.subset(idx[:cut]), self.subset(idx[cut:])

    # ------------------------------------------------------------------ pandas and files

    def to_dataframe(self) -> pd.DataFrame:
        """One row per round: ``action, reward, propensity[, position][, pmf_k], context``."""
        data: dict[str, np.ndarray] = {
            "action": self.action,
            "reward": self.reward,
            "propensity": self.propensity,
        }
        if self.position is not None:
            data["position"] = self.position
        if self.pmf is not None:
            for k in range(self.n_actions):
                data[f"{PMF_PREFIX}{k}"] = self.pmf[:, k]
        for j, name in enumerate(self.columns):
            data[name] = self.context[:, j]
        return pd.DataFrame(data)

    @classmethod
    def from_dataframe(
        cls,
        frame: pd.DataFrame,
        *,
        n_actions: int | None = None,
        context_columns: Sequence[str] | None = None,
        action_features: Sequence[dict[str, str | float]] = (),
    ) -> LoggedBandit:
        """Build and validate from a frame with the logged-bandit columns.

        Non-numeric context columns are one-hot encoded. ``n_actions`` defaults to the pmf
        width when ``pmf_k`` columns exist, else ``max(action) + 1``.
        """
        missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
        if missing:
            msg = f"Missing required column(s): {', '.join(missing)} (have: {', '.join(map(str, frame.columns))})"
            raise LoggedDataError(msg)
        action_raw = frame["action"].to_numpy()
        if not np.issubdtype(action_raw.dtype, np.integer):
            as_float = pd.to_numeric(frame["action"], errors="coerce").to_numpy(dtype=float)
            if not np.all(np.isfinite(as_float)) or not np.all(as_float == np.round(as_float)):
                msg = "Expected integer action indices in column `action`"
                raise LoggedDataError(msg)
            action_raw = as_float
        action = action_raw.astype(np.int64)
        pmf_cols = _pmf_columns(frame, n_actions)
        pmf = frame[pmf_cols].to_numpy(dtype=float) if pmf_cols else None
        k = n_actions or (len(pmf_cols) if pmf_cols else int(action.max(initial=-1)) + 1)
        ctx_frame = _context_frame(frame, context_columns, pmf_cols)
        return cls(
            context=ctx_frame.to_numpy(dtype=float),
            action=action,
            reward=_numeric(frame, "reward"),
            propensity=_numeric(frame, "propensity"),
            n_actions=k,
            position=frame["position"].to_numpy() if "position" in frame.columns else None,
            pmf=pmf,
            context_columns=tuple(str(c) for c in ctx_frame.columns),
            action_features=tuple(action_features),
        )


def _pmf_columns(frame: pd.DataFrame, n_actions: int | None) -> list[str]:
    """The ``pmf_0 .. pmf_{K-1}`` columns in action order; a gap or a bad name is refused,
    naming the columns (a missing ``pmf_3`` used to shift every later action by one).

    Examples
    --------
    >>> _pmf_columns(pd.DataFrame(columns=["pmf_1", "pmf_0", "x"]), None)
    ['pmf_0', 'pmf_1']
    >>> _pmf_columns(pd.DataFrame(columns=["pmf_0", "pmf_1", "pmf_3"]), None)
    Traceback (most recent call last):
    ...
    offline_eval.errors.LoggedDataError: Missing column(s) pmf_2: the logging pmf needs pmf_0..pmf_3
    """
    found: dict[int, str] = {}
    for column in frame.columns:
        name = str(column)
        if not name.startswith(PMF_PREFIX):
            continue
        suffix = name[len(PMF_PREFIX) :]
        if not suffix.isdigit():
            msg = f"Column {name!r}: pmf columns are named pmf_0, pmf_1, ... (one per action)"
            raise LoggedDataError(msg)
        found[int(suffix)] = name
    if not found:
        return []
    width = max(max(found) + 1, n_actions or 0)
    missing = [f"{PMF_PREFIX}{k}" for k in range(width) if k not in found]
    if missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")  # noqa: PLR2004
        msg = f"Missing column(s) {shown}: the logging pmf needs pmf_0..pmf_{width - 1}"
        raise LoggedDataError(msg)
    return [found[k] for k in range(width)]


def _numeric(frame: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)


def _context_frame(
    frame: pd.DataFrame, context_columns: Sequence[str] | None, pmf_cols: Sequence[str]
) -> pd.DataFrame:
    if context_columns is None:
        skip = set(RESERVED_COLUMNS) | set(pmf_cols)
        context_columns = [
            str(c) for c in frame.columns if c not in skip and not str(c).startswith(AUDIT_PREFIX)
        ]
    absent = [c for c in context_columns if c not in frame.columns]
    if absent:
        msg = f"Missing context column(s): {', '.join(absent)}"
        raise LoggedDataError(msg)
    ctx = frame[list(context_columns)]
    categorical = [c for c in ctx.columns if not pd.api.types.is_numeric_dtype(ctx[c])]
    if categorical:
        ctx = pd.get_dummies(ctx, columns=categorical, dtype=float)
    return ctx.astype(float)


PARQUET_MAGIC = b"PAR1"


def read_frame(path: str | Path) -> pd.DataFrame:
    """Read a Parquet (``.parquet``/``.pq``) or CSV file as a frame.

    A file that cannot be read as its suffix says (empty, truncated, Parquet bytes named
    ``.csv`` or text named ``.parquet``, not UTF-8) or that has no rows is one
    :class:`LoggedDataError` naming the file and the problem.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> pd.DataFrame({"a": [1]}).to_parquet(d / "p.csv")
    >>> read_frame(d / "p.csv")
    Traceback (most recent call last):
    ...
    offline_eval.errors.LoggedDataError: p.csv is not a CSV file (looks like Parquet); name it .parquet
    >>> _ = (d / "h.csv").write_text("a,b\\n")
    >>> read_frame(d / "h.csv")
    Traceback (most recent call last):
    ...
    offline_eval.errors.LoggedDataError: h.csv has column names but no rows
    """
    p = Path(path)
    if not p.exists():
        msg = f"No such file: {p}"
        raise LoggedDataError(msg)
    suffix = p.suffix.lower()
    if p.is_dir() or suffix not in (".parquet", ".pq", ".csv"):
        msg = f"Expected a .parquet or .csv file, got {p.name}"
        raise LoggedDataError(msg)
    with p.open("rb") as handle:
        head = handle.read(len(PARQUET_MAGIC))
    if not head:
        msg = f"{p.name} is empty (no header, no rows)"
        raise LoggedDataError(msg)
    if suffix == ".csv" and head == PARQUET_MAGIC:
        msg = f"{p.name} is not a CSV file (looks like Parquet); name it .parquet"
        raise LoggedDataError(msg)
    if suffix != ".csv" and head != PARQUET_MAGIC:
        msg = f"{p.name} is not a Parquet file (it does not start with PAR1; a CSV file?)"
        raise LoggedDataError(msg)
    frame = _read_checked(p, suffix)
    if frame.empty and len(frame.columns) > 0:
        msg = f"{p.name} has column names but no rows"
        raise LoggedDataError(msg)
    if frame.empty:
        msg = f"{p.name} has no columns and no rows"
        raise LoggedDataError(msg)
    return frame


def _read_checked(p: Path, suffix: str) -> pd.DataFrame:
    """``pd.read_csv``/``pd.read_parquet``; a reader's failure is one line naming the file."""
    try:
        if suffix == ".csv":
            return pd.read_csv(p)
        return pd.read_parquet(p)
    except pd.errors.EmptyDataError:
        msg = f"{p.name} is empty (no header, no rows)"
        raise LoggedDataError(msg) from None
    except UnicodeDecodeError:
        msg = f"{p.name} is not a CSV text file (not UTF-8)"
        raise LoggedDataError(msg) from None
    except pd.errors.ParserError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "malformed"
        msg = f"{p.name} is not a valid CSV file: {first}"
        raise LoggedDataError(msg) from None
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        if isinstance(exc, OSError) and exc.filename is not None:
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        kind = "CSV" if suffix == ".csv" else "Parquet"
        msg = f"{p.name} is not a readable {kind} file (truncated or corrupt?): {first}"
        raise LoggedDataError(msg) from None


def read_action_features(path: str | Path) -> tuple[dict[str, str | float], ...]:
    """Action features from the simulator's ``<stem>.meta.json`` beside a log, if present."""
    import json

    meta = Path(path).with_suffix("").with_suffix(".meta.json")
    if not meta.exists():
        return ()
    data = json.loads(meta.read_text())
    families = data.get("action_families") or []
    ids = data.get("action_ids") or [""] * len(families)
    return tuple(
        {"family": str(f), "catalog_id": str(i)} for f, i in zip(families, ids, strict=True)
    )


def read_logs(path: str | Path, *, n_actions: int | None = None) -> LoggedBandit:
    """Read a logged-bandit Parquet (``.parquet``/``.pq``) or CSV file (+ ``.meta.json``)."""
    frame = read_frame(path)
    features = read_action_features(path)
    if features and n_actions is None:
        n_actions = len(features)
    return LoggedBandit.from_dataframe(frame, n_actions=n_actions, action_features=features)


def write_logs(logs: LoggedBandit, path: str | Path) -> None:
    """Write ``logs`` as Parquet or CSV (chosen by the file suffix)."""
    p = Path(path)
    frame = logs.to_dataframe()
    if p.suffix.lower() in (".parquet", ".pq"):
        frame.to_parquet(p, index=False)
    elif p.suffix.lower() == ".csv":
        frame.to_csv(p, index=False)
    else:
        msg = f"Expected a .parquet or .csv suffix, got {p.name}"
        raise LoggedDataError(msg)

"""A prognostic score for variance reduction: P(employed) from observable case facts.

Fitted on historical (pre-trial) decisions -- e.g. practice-as-usual logs from before the
trial (``nbi simulate logs``) or the control arm of an earlier period -- and then used as a
single covariate in Lin's estimator (:func:`offline_eval.rct.lin_adjusted`). The score uses
only what the case system records before the decision (the case facts of
:data:`CASE_FACTS`); protected attributes and the simulator's hidden ``latent_type`` are
never inputs. Because the model is fitted on data from outside the trial, the score is a fixed
function of pre-treatment covariates and Lin's estimator stays unbiased whatever its quality;
a better score only buys a smaller standard error (Deng et al. 2013, CUPED; Schuler et al. 2022,
"prognostic covariate adjustment").

Model: ridge-penalised logistic regression fitted by Newton-Raphson (IRLS) on standardised
numeric facts and dummy-coded categorical ones, intercept unpenalised. Stored as JSON.

References
----------
Schuler, A., Walsh, D., Hall, D. et al. (2022). Increasing the efficiency of randomized trial
estimates via linear adjustment for a prognostic score. Int. J. Biostatistics 18(2), 329-356.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from offline_eval.errors import ExperimentDataError

NUMERIC_FACTS = ("age", "weeks_unemployed", "benefit_history_weeks", "labour_demand_index")
BOOLEAN_FACTS = ("health_limitation", "single_parent")
CATEGORICAL_FACTS = ("target_group", "education", "last_sector", "danish_proficiency")
CASE_FACTS = NUMERIC_FACTS + BOOLEAN_FACTS + CATEGORICAL_FACTS
"""Pre-treatment case facts the score uses (the recommender's own context features)."""
FORMAT = "nbi-prognostic-1"
MAX_ITER = 50


@dataclass(frozen=True)
class PrognosticModel:
    """A fitted score: ``P(outcome = 1 | case facts)``.

    ``numeric`` columns are standardised with ``mean``/``scale`` (also their squares for age
    and weeks unemployed, which act non-linearly); ``levels`` are the categories of each
    categorical column seen in fitting (the first is the reference; an unseen category scores
    as the reference). ``coef`` follows :meth:`design_names`.
    """

    numeric: tuple[str, ...]
    boolean: tuple[str, ...]
    levels: dict[str, tuple[str, ...]]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    intercept: float
    coef: tuple[float, ...]
    outcome: str
    n_fit: int
    ridge: float
    brier_fit: float
    base_rate: float

    def design_names(self) -> list[str]:
        """Names of the design columns after the intercept."""
        names = list(self.numeric) + [f"{c}^2" for c in _squared(self.numeric)]
        names += list(self.boolean)
        for col, lv in self.levels.items():
            names += [f"{col}={v}" for v in lv[1:]]
        return names

    def score(self, frame: pd.DataFrame) -> np.ndarray:
        """The score of every row of ``frame``, shape ``(n,)``, in (0, 1)."""
        _require(frame, (*self.numeric, *self.boolean, *self.levels))
        x = _design(frame, self.numeric, self.boolean, self.levels)
        x = (x - np.asarray(self.mean)) / np.asarray(self.scale)
        eta = self.intercept + x @ np.asarray(self.coef)
        out: np.ndarray = 1.0 / (1.0 + np.exp(-eta))
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (with a format tag)."""
        return {
            "format": FORMAT,
            "numeric": list(self.numeric),
            "boolean": list(self.boolean),
            "levels": {k: list(v) for k, v in self.levels.items()},
            "mean": list(self.mean),
            "scale": list(self.scale),
            "intercept": self.intercept,
            "coef": list(self.coef),
            "outcome": self.outcome,
            "n_fit": self.n_fit,
            "ridge": self.ridge,
            "brier_fit": self.brier_fit,
            "base_rate": self.base_rate,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> PrognosticModel:
        """Inverse of :meth:`to_dict`; a wrong format is an :class:`ExperimentDataError`."""
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            msg = f"Not a prognostic model file (expected format {FORMAT!r})"
            raise ExperimentDataError(msg)
        try:
            model = cls(
                numeric=tuple(doc["numeric"]),
                boolean=tuple(doc["boolean"]),
                levels={str(k): tuple(str(x) for x in v) for k, v in doc["levels"].items()},
                mean=tuple(float(x) for x in doc["mean"]),
                scale=tuple(float(x) for x in doc["scale"]),
                intercept=float(doc["intercept"]),
                coef=tuple(float(x) for x in doc["coef"]),
                outcome=str(doc["outcome"]),
                n_fit=int(doc["n_fit"]),
                ridge=float(doc["ridge"]),
                brier_fit=float(doc["brier_fit"]),
                base_rate=float(doc["base_rate"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"Prognostic model file is incomplete or malformed: {exc}"
            raise ExperimentDataError(msg) from exc
        if len(model.coef) != len(model.design_names()) or len(model.mean) != len(model.coef):
            msg = "Prognostic model file: coefficient count does not match its columns"
            raise ExperimentDataError(msg)
        numbers = (model.intercept, *model.coef, *model.mean, *model.scale)
        if not all(math.isfinite(v) for v in numbers) or not all(v > 0 for v in model.scale):
            msg = (
                "Prognostic model file has non-finite coefficients, means or scales (or a "
                "scale <= 0); refit it with nbi prognostic fit"
            )
            raise ExperimentDataError(msg)
        return model

    def save(self, path: Path) -> Path:
        """Write the model as JSON."""
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, path: Path) -> PrognosticModel:
        """Read a model written by :meth:`save`; a missing or unreadable file, or one that is not
        a model, is an :class:`ExperimentDataError` naming the file."""
        if not path.is_file():
            msg = f"No such prognostic model file: {path}" + (
                " (a directory)" if path.is_dir() else ""
            )
            raise ExperimentDataError(msg)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            msg = f"Cannot read prognostic model {path}: {exc.strerror or type(exc).__name__}"
            raise ExperimentDataError(msg) from exc
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            msg = f"Cannot read prognostic model {path}: not JSON ({str(exc).splitlines()[0]})"
            raise ExperimentDataError(msg) from exc
        return cls.from_dict(doc)


def _squared(numeric: Sequence[str]) -> list[str]:
    return [c for c in numeric if c in ("age", "weeks_unemployed")]


def _require(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        have = ", ".join(map(str, frame.columns[:30]))
        msg = f"Missing case-fact column(s): {', '.join(missing)} (have: {have})"
        raise ExperimentDataError(msg)


def _design(
    frame: pd.DataFrame,
    numeric: Sequence[str],
    boolean: Sequence[str],
    levels: dict[str, tuple[str, ...]],
) -> np.ndarray:
    parts: list[np.ndarray] = []
    num = frame[list(numeric)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(num).all():
        msg = f"Case facts {', '.join(numeric)} must be numbers with no missing values"
        raise ExperimentDataError(msg)
    parts.append(num)
    parts += [num[:, [list(numeric).index(c)]] ** 2 for c in _squared(numeric)]
    for col in boolean:
        parts.append(_as_bool(frame[col], col)[:, None])
    for col, lv in levels.items():
        values = frame[col].astype(str).to_numpy()
        parts += [(values == v).astype(float)[:, None] for v in lv[1:]]
    return np.column_stack(parts) if parts else np.empty((len(frame), 0))


def _as_bool(column: pd.Series, name: str) -> np.ndarray:
    if column.dtype == bool:
        return column.to_numpy(dtype=float)
    text = column.astype(str).str.strip().str.lower()
    mapping = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0}
    out = text.map(mapping)
    if out.isna().any():
        msg = f"Case fact {name} must be true/false or 0/1"
        raise ExperimentDataError(msg)
    return out.to_numpy(dtype=float)


def fit(
    frame: pd.DataFrame,
    outcome: str = "reward",
    *,
    numeric: Sequence[str] = NUMERIC_FACTS,
    boolean: Sequence[str] = BOOLEAN_FACTS,
    categorical: Sequence[str] = CATEGORICAL_FACTS,
    ridge: float = 1.0,
) -> PrognosticModel:
    """Fit the score on historical decisions with a 0/1 ``outcome`` column.

    ``ridge`` is the L2 penalty on the standardised coefficients (the intercept is free).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> n = 4000
    >>> df = pd.DataFrame({"age": rng.integers(20, 65, n), "weeks_unemployed": rng.integers(0, 30, n),
    ...     "benefit_history_weeks": rng.integers(0, 100, n), "labour_demand_index": 1.0,
    ...     "health_limitation": rng.random(n) < 0.2, "single_parent": False,
    ...     "target_group": "dagpenge", "education": "vocational", "last_sector": "retail",
    ...     "danish_proficiency": "native"})
    >>> df["reward"] = (rng.random(n) < np.where(df["health_limitation"], 0.4, 0.8)).astype(int)
    >>> model = fit(df)
    >>> s = model.score(df)
    >>> bool(s[df["health_limitation"]].mean() < 0.5 < s[~df["health_limitation"]].mean())
    True
    """
    _require(frame, (outcome, *numeric, *boolean, *categorical))
    y = pd.to_numeric(frame[outcome], errors="coerce").to_numpy(dtype=float)
    if len(y) < 2 or not np.isin(y, (0.0, 1.0)).all():  # noqa: PLR2004
        msg = f"The outcome {outcome!r} must be 0/1 with no missing values (>= 2 rows)"
        raise ExperimentDataError(msg)
    if ridge < 0 or not math.isfinite(ridge):
        msg = f"ridge must be a finite number >= 0, got {ridge}"
        raise ExperimentDataError(msg)
    levels = {c: tuple(sorted(frame[c].astype(str).unique().tolist())) for c in categorical}
    x = _design(frame, numeric, boolean, levels)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    z = (x - mean) / scale
    beta = _irls(z, y, ridge)
    p = 1.0 / (1.0 + np.exp(-(beta[0] + z @ beta[1:])))
    return PrognosticModel(
        numeric=tuple(numeric),
        boolean=tuple(boolean),
        levels=levels,
        mean=tuple(float(v) for v in mean),
        scale=tuple(float(v) for v in scale),
        intercept=float(beta[0]),
        coef=tuple(float(v) for v in beta[1:]),
        outcome=outcome,
        n_fit=len(y),
        ridge=float(ridge),
        brier_fit=float(np.mean((p - y) ** 2)),
        base_rate=float(y.mean()),
    )


def _irls(z: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    """Penalised logistic regression by Newton-Raphson; returns ``[intercept, coef...]``."""
    design = np.column_stack([np.ones(len(y)), z])
    penalty = np.full(design.shape[1], ridge)
    penalty[0] = 0.0
    rate = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
    beta = np.zeros(design.shape[1])
    beta[0] = math.log(rate / (1 - rate))
    for _ in range(MAX_ITER):
        p = 1.0 / (1.0 + np.exp(-(design @ beta)))
        w = np.clip(p * (1 - p), 1e-9, None)
        grad = design.T @ (y - p) - penalty * beta
        hess = (design.T * w) @ design + np.diag(penalty) + 1e-9 * np.eye(len(beta))
        step = np.linalg.solve(hess, grad)
        beta = beta + step
        if float(np.max(np.abs(step))) < 1e-8:  # noqa: PLR2004
            break
    return beta


def r_squared(score: np.ndarray, outcome: np.ndarray) -> float:
    """Share of the outcome's variance the score explains linearly (its squared correlation)."""
    if len(score) < 3 or np.std(score) == 0 or np.std(outcome) == 0:  # noqa: PLR2004
        return 0.0
    return float(np.corrcoef(score, outcome)[0, 1] ** 2)

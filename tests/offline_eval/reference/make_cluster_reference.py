"""Make the cluster-robust reference values checked in beside this script.

Run once with statsmodels installed (it is not an nbi dependency)::

    .venv/bin/pip install statsmodels
    .venv/bin/python tests/offline_eval/reference/make_cluster_reference.py

It draws four fixed-seed data sets (cluster-randomised with unequal sizes and a 0/1 outcome,
with covariates and a continuous outcome, eight clusters only, and citizen-randomised with
caseworker clusters that cut across the arms), rounds them to 6 decimals, and writes the data
and these reference numbers to ``cluster_reference.json``:

* ``cr1_se``: statsmodels ``OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": g})`` (the
  CR1 correction ``G/(G-1) (N-1)/(N-K)``) on the treatment coefficient;
* ``cr2_se``, ``cr2_df``: Bell-McCaffrey CR2 and its degrees of freedom written out the
  textbook way with dense N x N matrices (``A_g = (I - H_gg)^{-1/2}`` by an eigen-decomposition
  of each block; ``df = (sum lambda)^2 / sum lambda^2`` over the eigenvalues of ``G'G`` with
  ``G = [(I - H)_{., g} A_g X_g (X'X)^{-1} e_T]``), as in clubSandwich / estimatr;
* ``cr2_closed_form_se`` (difference in means, arm fixed per cluster):
  ``sqrt(sum_arm sum_g S_g^2 / (n_arm^2 (1 - n_g / n_arm)))``;
* ``icc``: the one-way ANOVA estimator, with the between-cluster sum of squares and degrees of
  freedom from statsmodels' ``anova_lm(ols("y ~ C(arm)"), ols("y ~ C(cell)"))`` (cell =
  cluster within arm) and the within mean square of the cell model.

The test (``test_cluster_reference.py``) reads only the JSON. Nothing runs on import (pytest
imports this module for doctests).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
SEED = 20260610


def _datasets() -> dict[str, dict[str, Any]]:
    import numpy as np

    rng = np.random.default_rng(SEED)
    out: dict[str, dict[str, Any]] = {}

    # 1. 30 caseworkers, unequal sizes, 12 in control; 0/1 outcome with a cluster effect.
    sizes = rng.integers(3, 40, size=30)
    arm_of = np.zeros(30, dtype=int)
    arm_of[rng.permutation(30)[12:]] = 1
    g = np.repeat(np.arange(30), sizes)
    t = arm_of[g]
    p = np.clip(0.6 + 0.05 * t + rng.normal(0, 0.1, 30)[g], 0.02, 0.98)
    y = (rng.random(g.shape[0]) < p).astype(float)
    out["binary_unequal"] = {"y": y, "t": t, "g": g, "x": None}

    # 2. 24 clusters, two covariates (citizen-level and cluster-level), continuous outcome.
    sizes = rng.integers(5, 30, size=24)
    arm_of = np.zeros(24, dtype=int)
    arm_of[rng.permutation(24)[10:]] = 1
    g = np.repeat(np.arange(24), sizes)
    t = arm_of[g]
    x1 = rng.normal(size=g.shape[0])
    x2 = rng.normal(size=24)[g]
    y = 20 + 1.5 * t + 3 * x1 + 2 * x2 + rng.normal(0, 2, 24)[g] + rng.normal(0, 6, g.shape[0])
    out["continuous_lin"] = {"y": y, "t": t, "g": g, "x": np.column_stack([x1, x2])}

    # 3. eight job centres (4 + 4), sizes 10-60: where CR1 and CR2 differ most.
    sizes = rng.integers(10, 60, size=8)
    arm_of = np.array([0, 1, 0, 1, 1, 0, 1, 0])
    g = np.repeat(np.arange(8), sizes)
    t = arm_of[g]
    x1 = rng.normal(size=g.shape[0])
    y = 10 + 0.8 * t + x1 + rng.normal(0, 1.5, 8)[g] + rng.normal(0, 4, g.shape[0])
    out["few_clusters"] = {"y": y, "t": t, "g": g, "x": x1[:, None]}

    # 4. citizen-randomised, 15 caseworker clusters across both arms.
    g = rng.integers(0, 15, size=300)
    t = (rng.random(300) < 0.7).astype(int)
    y = 5 + 0.5 * t + rng.normal(0, 1, 15)[g] + rng.normal(0, 2, 300)
    out["crossed_caseworkers"] = {"y": y, "t": t, "g": g, "x": None}

    for data in out.values():
        data["y"] = np.round(data["y"], 6)
        if data["x"] is not None:
            data["x"] = np.round(data["x"], 6)
    return out


def _design(t: Any, x: Any) -> Any:
    import numpy as np

    ones = np.ones(t.shape[0])
    if x is None:
        return np.column_stack([ones, t])
    xc = x - x.mean(axis=0)
    return np.column_stack([ones, t, xc, xc * t[:, None]])


def _cr2_dense(y: Any, x: Any, g: Any, coef: int = 1) -> tuple[float, float]:
    import numpy as np

    n = x.shape[0]
    bread = np.linalg.inv(x.T @ x)
    hat = x @ bread @ x.T
    resid = y - x @ (bread @ x.T @ y)
    ell = np.zeros(x.shape[1])
    ell[coef] = 1.0
    meat = np.zeros((x.shape[1], x.shape[1]))
    columns = []
    for c in np.unique(g):
        idx = np.flatnonzero(g == c)
        block = np.eye(idx.shape[0]) - hat[np.ix_(idx, idx)]
        w, v = np.linalg.eigh(block)
        a = v @ np.diag(w**-0.5) @ v.T
        score = x[idx].T @ a @ resid[idx]
        meat += np.outer(score, score)
        columns.append((np.eye(n) - hat)[:, idx] @ a @ x[idx] @ bread @ ell)
    cov = bread @ meat @ bread
    big_g = np.column_stack(columns)
    lam = np.linalg.eigvalsh(big_g.T @ big_g)
    return float(np.sqrt(cov[coef, coef])), float(lam.sum() ** 2 / (lam**2).sum())


def _cr2_closed_form(y: Any, t: Any, g: Any) -> float:
    import numpy as np

    total = 0.0
    for arm in (0, 1):
        in_arm = t == arm
        resid = y[in_arm] - y[in_arm].mean()
        n_arm = in_arm.sum()
        for c in np.unique(g[in_arm]):
            mask = g[in_arm] == c
            total += resid[mask].sum() ** 2 / (n_arm**2 * (1 - mask.sum() / n_arm))
    return float(np.sqrt(total))


def _icc(y: Any, t: Any, g: Any) -> float:
    import numpy as np
    import pandas as pd
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    cell = np.array([f"{a}_{b}" for a, b in zip(g, t, strict=True)])
    frame = pd.DataFrame({"y": y, "arm": t, "cell": cell})
    # Clusters nested in arms: compare y ~ C(arm) with y ~ C(cell) (both full rank; a single
    # model y ~ C(arm) + C(cell) is rank-deficient and its type I table is then unreliable).
    within_arm = smf.ols("y ~ C(arm)", data=frame).fit()
    by_cell = smf.ols("y ~ C(cell)", data=frame).fit()
    table = anova_lm(within_arm, by_cell)
    df_b = float(table["df_diff"].iloc[1])
    msb = float(table["ss_diff"].iloc[1]) / df_b
    msw = float(by_cell.ssr / by_cell.df_resid)
    n = len(y)
    n0_sum = 0.0
    for arm in np.unique(t):
        sizes = pd.Series(cell[t == arm]).value_counts().to_numpy()
        n0_sum += (sizes**2).sum() / sizes.sum()
    n0 = (n - n0_sum) / df_b
    return float((msb - msw) / (msb + (n0 - 1) * msw))


def _reference(data: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    import statsmodels.api as sm

    y, t, g, x = data["y"], data["t"], data["g"], data["x"]
    nested = all(np.unique(t[g == c]).shape[0] == 1 for c in np.unique(g))
    models: dict[str, Any] = {}
    for name, covariates in (("dim", None), ("lin", x)):
        if name == "lin" and x is None:
            continue
        design = _design(t, covariates)
        fit = sm.OLS(y, design).fit(cov_type="cluster", cov_kwds={"groups": g})
        cr2_se, cr2_df = _cr2_dense(y, design, g)
        models[name] = {
            "estimate": float(fit.params[1]),
            "cr1_se": float(fit.bse[1]),
            "cr2_se": cr2_se,
            "cr2_df": cr2_df,
        }
        if name == "dim" and nested:
            models[name]["cr2_closed_form_se"] = _cr2_closed_form(y, t, g)
    return {
        "y": [float(v) for v in y],
        "t": [int(v) for v in t],
        "g": [int(v) for v in g],
        "x": None if x is None else [[float(v) for v in row] for row in x],
        "nested": nested,
        "models": models,
        "icc": _icc(y, t, g),
    }


def main() -> None:
    """Write ``cluster_reference.json``."""
    import statsmodels

    doc = {
        "generator": "tests/offline_eval/reference/make_cluster_reference.py",
        "statsmodels": statsmodels.__version__,
        "seed": SEED,
        "datasets": {name: _reference(data) for name, data in _datasets().items()},
    }
    (HERE / "cluster_reference.json").write_text(json.dumps(doc, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()

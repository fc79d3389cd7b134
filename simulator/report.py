"""Tables of a replay: per week, in total, the RCT contrast with its power, and by group.

Employment is the realised "job within H weeks of the decision"; ``true_employment`` is the
exact expected value of the same thing; regret is the oracle's true value minus the true value
of the recommendation (treatment) or of the assignment (``regret_assigned``, both arms).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from simulator.replay import ReplayResult

Z95 = 1.959963984540054
MDE_FACTOR = 2.80  # z_{0.975} + z_{0.80}
PROTECTED = ("gender", "origin", "age_band")


def _with_derived(result: ReplayResult) -> pd.DataFrame:
    d = result.decisions.copy()
    d["regret_assigned"] = d["p_oracle"] - d["p_assigned"]
    return d


def _arm_summary(d: pd.DataFrame) -> dict[str, float]:
    treat = d["recommended"] >= 0
    return {
        "n": int(len(d)),
        "employment_rate": float(d["employed"].mean()) if len(d) else math.nan,
        "true_employment": float(d["p_assigned"].mean()) if len(d) else math.nan,
        "mean_benefit_weeks": float(d["benefit_weeks"].mean()) if len(d) else math.nan,
        "benefit_dkk": float(d["benefit_dkk"].sum()),
        "regret_mean": float(d.loc[treat, "regret"].mean()) if treat.any() else math.nan,
        "regret_total": float(d.loc[treat, "regret"].sum()),
        "regret_assigned_mean": float(d["regret_assigned"].mean()) if len(d) else math.nan,
        "compliance": float(d.loc[treat, "complied"].mean()) if treat.any() else math.nan,
    }


def weekly_table(result: ReplayResult) -> pd.DataFrame:
    """One row per (week, group): counts, employment, benefit weeks and DKK, regret."""
    d = _with_derived(result)
    rows = [
        {"week": int(str(week)), "group": str(group), **_arm_summary(part)}
        for (week, group), part in d.groupby(["week", "group"], sort=True)
    ]
    table = pd.DataFrame(rows)
    if len(table):
        treat = table["group"] == "treatment"
        table["cumulative_regret"] = np.where(
            treat, table["regret_total"].where(treat, 0.0).cumsum(), np.nan
        )
    return table


def totals(result: ReplayResult) -> dict[str, dict[str, float]]:
    """Totals per arm and overall."""
    d = _with_derived(result)
    out = {str(g): _arm_summary(part) for g, part in d.groupby("group", sort=True)}
    out["all"] = _arm_summary(d)
    return out


def rct_summary(result: ReplayResult) -> dict[str, float]:
    """Treatment minus control in employment within H: estimate, 95 % CI, p-value, MDE.

    The standard error is Neyman's, ``sqrt(p_t(1-p_t)/n_t + p_c(1-p_c)/n_c)``; the MDE for the
    span is ``2.80 sqrt(p(1-p)(1/n_c + 1/n_t))`` at the control rate ``p`` (domain.md 3.2).
    ``true_itt`` is the exact expected difference from the simulator's ground truth.
    """
    d = result.decisions
    t = d[d["group"] == "treatment"]
    c = d[d["group"] == "control"]
    n_t, n_c = len(t), len(c)
    if n_t == 0 or n_c == 0:
        return {"n_treatment": float(n_t), "n_control": float(n_c)}
    p_t, p_c = float(t["employed"].mean()), float(c["employed"].mean())
    se = math.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
    diff = p_t - p_c
    z = diff / se if se > 0 else 0.0
    return {
        "n_treatment": float(n_t),
        "n_control": float(n_c),
        "employment_treatment": p_t,
        "employment_control": p_c,
        "difference": diff,
        "ci_low": diff - Z95 * se,
        "ci_high": diff + Z95 * se,
        "p_value": math.erfc(abs(z) / math.sqrt(2.0)),
        "mde": MDE_FACTOR * math.sqrt(p_c * (1 - p_c) * (1 / n_c + 1 / n_t)),
        "true_itt": float(t["p_assigned"].mean() - c["p_assigned"].mean()),
    }


def by_group(result: ReplayResult) -> pd.DataFrame:
    """Employment, true employment and regret by protected attribute, value and arm."""
    d = _with_derived(result)
    rows: list[dict[str, object]] = []
    for attribute in PROTECTED:
        for (value, group), part in d.groupby([attribute, "group"], sort=True):
            key = {"attribute": attribute, "value": str(value), "group": str(group)}
            rows.append({**key, **_arm_summary(part)})
    return pd.DataFrame(rows)


def summary(result: ReplayResult) -> dict[str, Any]:
    """Everything as one JSON-ready document."""
    return {
        "policy": result.policy,
        "weeks": result.weeks,
        "seed": result.seed,
        "actions": list(result.action_ids),
        "totals": totals(result),
        "rct": rct_summary(result),
        "by_group": by_group(result).to_dict(orient="records"),
        "n_learned": len(result.learn_log),
    }

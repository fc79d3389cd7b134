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


def rct_summary(
    result: ReplayResult,
    *,
    lag_weeks: int = 0,
    horizon: int | None = None,
    all_outcomes: bool = False,
) -> dict[str, float]:
    """The trial as analysed at the end of the run, in information time.

    Only decisions whose outcome is known at the analysis date count: decided at least
    ``horizon + lag_weeks`` weeks before the end of the run (``horizon``: the decisions'
    ``follow_up_weeks``, default 26; ``lag_weeks``: the register lag). Younger decisions are
    ``pending_*`` (a job some of them already found is known, but their zeros are not, so
    counting them would bias the contrast upwards and overstate the power).

    Treatment minus control in employment within H: estimate, 95 % CI, p-value, MDE. The
    standard error is Neyman's, ``sqrt(p_t(1-p_t)/n_t + p_c(1-p_c)/n_c)``; the MDE for the
    span is :func:`offline_eval.power.mde` (the one convention: ``(z_{0.975} + z_{0.80})
    sqrt(p(1-p)(1/n_c + 1/n_t))`` at the control rate ``p``, domain.md 3.2).

    The truth, from the simulator's exact P(job within H) per person: ``true_itt`` is the
    mean over the analysed treatment-arm citizens of ``p_assigned - p_practice`` (what they
    received against practice as usual, with the seats left when their turn came), the
    estimand of the ITT contrast; ``true_itt_all`` the same over every treatment decision of
    the run; ``true_arm_difference`` the plain difference of the arms' mean ``p_assigned``
    (which also carries chance imbalance between the arms).

    ``all_outcomes=True`` counts every simulated outcome, known at the end or not (only the
    simulator can; see :func:`rct_all_outcomes`).
    """
    d = result.decisions
    if horizon is None:
        horizon = int(d["follow_up_weeks"].max()) if "follow_up_weeks" in d and len(d) else 26
    cutoff = result.weeks if all_outcomes else result.weeks - horizon - lag_weeks
    known = d[d["week"] <= cutoff]
    t_all = d[d["group"] == "treatment"]
    t = known[known["group"] == "treatment"]
    c = known[known["group"] == "control"]
    n_t, n_c = len(t), len(c)
    out: dict[str, float] = {
        "cutoff_week": float(cutoff),
        "horizon_weeks": float(horizon),
        "lag_weeks": float(lag_weeks),
        "n_treatment": float(n_t),
        "n_control": float(n_c),
        "pending_treatment": float(len(t_all) - n_t),
        "pending_control": float((d["group"] == "control").sum() - n_c),
        "true_itt_all": _per_person_itt(t_all),
    }
    if n_t == 0 or n_c == 0:
        return out
    p_t, p_c = float(t["employed"].mean()), float(c["employed"].mean())
    se = math.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
    diff = p_t - p_c
    z = diff / se if se > 0 else 0.0
    return {
        **out,
        "employment_treatment": p_t,
        "employment_control": p_c,
        "difference": diff,
        "se": se,
        "ci_low": diff - Z95 * se,
        "ci_high": diff + Z95 * se,
        "p_value": math.erfc(abs(z) / math.sqrt(2.0)),
        "mde": _mde(p_c, n_t, n_c),
        "true_itt": _per_person_itt(t),
        "true_arm_difference": float(t["p_assigned"].mean() - c["p_assigned"].mean()),
    }


def _per_person_itt(treated: pd.DataFrame) -> float:
    """Mean of TRUE P(job | received) - P(job | practice as usual) over treatment citizens."""
    if not len(treated) or "p_practice" not in treated:
        return math.nan
    return float((treated["p_assigned"] - treated["p_practice"]).mean())


def _mde(p_c: float, n_t: int, n_c: int) -> float:
    from offline_eval.power import mde

    if not 0.0 < p_c < 1.0:
        return math.nan
    return mde(p_c * (1 - p_c), n_t, n_c)


def rct_all_outcomes(result: ReplayResult) -> dict[str, float]:
    """The same contrast over every simulated outcome, known or not at the end of the run.

    Only the simulator can compute this (it draws every outcome at the decision); a real
    analysis at that date cannot. Kept to show how much information time costs.
    """
    return rct_summary(result, all_outcomes=True)


def by_group(result: ReplayResult) -> pd.DataFrame:
    """Employment, true employment and regret by protected attribute, value and arm."""
    d = _with_derived(result)
    rows: list[dict[str, object]] = []
    for attribute in PROTECTED:
        for (value, group), part in d.groupby([attribute, "group"], sort=True):
            key = {"attribute": attribute, "value": str(value), "group": str(group)}
            rows.append({**key, **_arm_summary(part)})
    return pd.DataFrame(rows)


VALUE_COLUMNS = (
    "policy",
    "practice",
    "uniform",
    "none",
    "best_noncontextual",
    "observable_oracle",
    "oracle",
)
WEEKS_PER_QUARTER = 13


def quarterly_values(result: ReplayResult) -> pd.DataFrame:
    """TRUE value per quarter of the served policy beside the reference policies.

    Value is the exact expected P(job within H) if every citizen received the offer the policy
    suggests, averaged over the treatment arm's citizens (the served policy: its
    recommendation; a reference: what it would give each of them, seats respected), so
    caseworker compliance does not blur it. ``share_of_gain`` is the served policy's gain over
    practice as usual as a share of the observable oracle's gain; ``regret`` is the observable
    oracle's value minus the served policy's.
    """
    d = result.decisions
    t = d[d["group"] == "treatment"]
    if "v_oracle" not in t.columns or not len(t):
        return pd.DataFrame()
    quarter = t["week"] // WEEKS_PER_QUARTER
    frame = pd.DataFrame({"quarter": quarter, "policy": t["p_recommended"]})
    for name in VALUE_COLUMNS[1:]:
        frame[name] = t[f"v_{name}"]
    table = frame.groupby("quarter", sort=True).mean()
    table.insert(0, "n", frame.groupby("quarter").size())
    gain = table["observable_oracle"] - table["practice"]
    table["share_of_gain"] = (table["policy"] - table["practice"]) / gain.where(gain > 0)
    table["regret"] = table["observable_oracle"] - table["policy"]
    return table.reset_index()


def calibration(result: ReplayResult, *, from_week: int = 0, bins: int = 10) -> dict[str, float]:
    """How well the shown expected employment of the recommendations matches the truth.

    Compared with the observable truth ``p_obs_recommended`` (the best any model of the case
    facts can know): mean absolute calibration error over ``bins`` equal-count bins of the
    shown value, and the mean absolute error per recommendation.
    """
    d = result.decisions
    t = d[(d["group"] == "treatment") & (d["week"] >= from_week)]
    t = t[np.isfinite(t["shown_recommended"]) & np.isfinite(t["p_obs_recommended"])]
    if len(t) < bins:
        return {"n": float(len(t))}
    ranks = t["shown_recommended"].rank(method="first")
    cut = pd.qcut(ranks, bins, labels=False)
    grouped = t.groupby(cut)[["shown_recommended", "p_obs_recommended"]].mean()
    ece = float((grouped["shown_recommended"] - grouped["p_obs_recommended"]).abs().mean())
    mae = float((t["shown_recommended"] - t["p_obs_recommended"]).abs().mean())
    return {"n": float(len(t)), "calibration_error": ece, "mean_abs_error": mae}


def shown_calibration(
    result: ReplayResult, *, from_week: int = 52, bins: int = 10
) -> dict[str, float]:
    """Calibration and interval coverage of every option shown to caseworkers.

    Against the observable truth ``p_obs`` of each shown option: mean absolute calibration
    error over ``bins`` equal-count bins of the shown estimate, mean absolute error, and the
    share of shown 95 % intervals that contain the truth.
    """
    shown = result.shown
    if shown is None or not len(shown):
        return {"n": 0.0}
    s = shown[shown["week"] >= from_week]
    if len(s) < bins:
        return {"n": float(len(s))}
    cut = pd.qcut(s["mean"].rank(method="first"), bins, labels=False)
    grouped = s.groupby(cut)[["mean", "p_obs"]].mean()
    return {
        "n": float(len(s)),
        "calibration_error": float((grouped["mean"] - grouped["p_obs"]).abs().mean()),
        "mean_abs_error": float((s["mean"] - s["p_obs"]).abs().mean()),
        "coverage": float(((s["low"] <= s["p_obs"]) & (s["p_obs"] <= s["high"])).mean()),
        "mean_interval_width": float((s["high"] - s["low"]).mean()),
    }


def summary(result: ReplayResult, *, lag_weeks: int = 0) -> dict[str, Any]:
    """Everything as one JSON-ready document.

    ``rct`` is the trial in information time (:func:`rct_summary` with the register lag
    ``lag_weeks``); ``rct_all_outcomes`` the same contrast with every simulated outcome;
    ``net_value_by_quarter`` the trial's realised net value in DKK and
    ``true_net_value_by_quarter`` the TRUE net value versus practice of the served policy and
    the references (:func:`net_value_by_quarter`, :func:`true_net_value_by_quarter`);
    ``shadow`` the service's shadow decisions of an HTTP run and their truth
    (:func:`shadow_truth`; ``None`` without any).
    """
    return {
        "policy": result.policy,
        "weeks": result.weeks,
        "seed": result.seed,
        "actions": list(result.action_ids),
        "totals": totals(result),
        "rct": rct_summary(result, lag_weeks=lag_weeks),
        "rct_all_outcomes": rct_all_outcomes(result),
        "by_group": by_group(result).to_dict(orient="records"),
        "n_learned": len(result.learn_log),
        "delay": result.delay,
        "quarterly_values": quarterly_values(result).to_dict(orient="records"),
        "net_value_by_quarter": net_value_by_quarter(result).to_dict(orient="records"),
        "true_net_value_by_quarter": true_net_value_by_quarter(result).to_dict(orient="records"),
        "calibration_after_year_1": calibration(result, from_week=52),
        "shown_options_after_year_1": shown_calibration(result, from_week=52),
        "shadow": shadow_truth(result),
    }


def net_value_by_quarter(result: ReplayResult, weeks_per_quarter: int = 13) -> pd.DataFrame:
    """Net value of the served policy per quarter of decisions, in the simulator's truth.

    One row per quarter: treatment and control mean cost per citizen (realised benefit DKK
    within the horizon + the assigned programme's catalog cost) and the net value per citizen
    (control minus treatment cost, positive = the recommender saves money) with its 95 %
    Neyman interval (:func:`offline_eval.cost_benefit.trial_net_value`); quarters with fewer
    than 2 citizens in an arm are left out.
    """
    from offline_eval.cost_benefit import trial_net_value

    d = result.decisions
    rows = []
    for quarter, part in d.groupby(d["week"] // weeks_per_quarter, sort=True):
        counts = part["group"].value_counts()
        if counts.get("treatment", 0) < 2 or counts.get("control", 0) < 2:  # noqa: PLR2004
            continue
        nv = trial_net_value(part)
        if nv is None:
            continue
        net = nv.net_value_per_citizen
        rows.append(
            {
                "quarter": int(str(quarter)),
                "n_treatment": nv.n_treatment,
                "n_control": nv.n_control,
                "cost_treatment": nv.cost_treatment,
                "cost_control": nv.cost_control,
                "net_value": net.estimate,
                "net_value_low": net.ci_low,
                "net_value_high": net.ci_high,
            }
        )
    return pd.DataFrame(rows)


def true_net_value_by_quarter(result: ReplayResult, weeks_per_quarter: int = 13) -> pd.DataFrame:
    """TRUE net value per citizen versus practice as usual, per quarter and policy.

    For the served policy (``served``: the treatment arm's assignments, non-compliance
    included) and each reference policy (every citizen of the quarter): the mean of
    ``cost_practice - cost_policy``, the TRUE expected benefit DKK within the horizon plus the
    programme cost (``true_cost_dkk``, ``cost_<name>``), with a 95 % normal interval of the
    paired difference. Positive: the policy saves money against practice. Needs a replay run
    with ``references``; returns an empty table otherwise.
    """
    d = result.decisions
    if "cost_practice" not in d.columns:
        return pd.DataFrame()
    refs = sorted(c.removeprefix("cost_") for c in d.columns if c.startswith("cost_"))
    rows = []
    for quarter, part in d.groupby(d["week"] // weeks_per_quarter, sort=True):
        treated = part[part["group"] == "treatment"]
        diffs = {"served": treated["cost_practice"] - treated["true_cost_dkk"]}
        diffs.update({n: part["cost_practice"] - part[f"cost_{n}"] for n in refs})
        for name, diff in diffs.items():
            if len(diff) < 2:  # noqa: PLR2004
                continue
            mean, se = float(diff.mean()), float(diff.std(ddof=1)) / math.sqrt(len(diff))
            rows.append(
                {
                    "quarter": int(str(quarter)),
                    "policy": name,
                    "n": len(diff),
                    "net_value": mean,
                    "net_value_low": mean - Z95 * se,
                    "net_value_high": mean + Z95 * se,
                }
            )
    return pd.DataFrame(rows)


def shadow_truth(result: ReplayResult) -> dict[str, float] | None:
    """The shadow decisions of an HTTP run and the TRUE value of a uniform pmf on them.

    ``decisions``: treatment decisions answered without a suggestion; ``true_value_uniform``:
    the mean over them of P(job within H) under a uniform draw among the offers available at
    each citizen's turn (``p_uniform``, exact): the value a service running
    ``NBI_POLICY=uniform`` in shadow mode would have had, had its suggestions been followed,
    on the same citizens and eligible offers, i.e. the estimand of the off-policy estimate from
    the shadow export (reported outcome = true outcome: ``misclassification`` 0, as ``nbi
    simulate run`` uses). ``practice_value``: the true value of what the caseworkers did;
    ``mean_reward``: their realised outcome. ``None`` when the run had no shadow decision.

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"shadow": [True, False], "p_uniform": [0.4, 0.9],
    ...                   "p_assigned": [0.5, 0.9], "reward": [1.0, 0.0]})
    >>> r = ReplayResult(d, (), (), "service", 1, 0)
    >>> shadow_truth(r)["true_value_uniform"]
    0.4
    """
    d = result.decisions
    if "shadow" not in d.columns or not d["shadow"].any():
        return None
    part = d[d["shadow"].astype(bool)]
    return {
        "decisions": int(len(part)),
        "true_value_uniform": float(part["p_uniform"].mean()),
        "practice_value": float(part["p_assigned"].mean()),
        "mean_reward": float(part["reward"].mean()),
    }

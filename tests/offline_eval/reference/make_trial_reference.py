"""Make the lifelines / statsmodels / linearmodels reference values for ``nbi experiment``.

Run with nbi's interpreter after installing the peer libraries into it (they are NOT project
dependencies; the tests read only the files written here)::

    .venv/bin/pip install lifelines statsmodels linearmodels
    .venv/bin/python tests/offline_eval/reference/make_trial_reference.py

It writes four small data files beside this script and ``trial_reference.json``:

``rossi.csv``
    lifelines' ``load_rossi`` (a randomised trial of financial aid ``fin`` for released
    prisoners; 52 weeks of follow-up, event ``arrest``).
``waltons.csv``
    lifelines' ``load_waltons`` (``T``, ``E``, two groups).
``card.csv``
    linearmodels' ``card`` (continuous outcome ``lwage``; instrument ``nearc4``, grew up near
    a 4-year college, received ``educ``, years of schooling: two-sided by nature).
``trial_seeded.csv``
    A fixed-seed trial in nbi's column convention (``group``, ``employed``, ``received`` with
    always-takers in the control arm, ``weeks_to_job`` empty when no job, ``follow_up_weeks``
    between 30 and 52, a continuous ``benefit_weeks``, covariates ``age`` and ``target_group``).

Each reference is computed with the peer library on the data as read back from the CSV (the
same bytes the tests read). Nothing runs on import (pytest imports this module for doctests).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
SEED = 20260110
ALPHA = 0.05


def write_data() -> None:
    """The four CSV files (rounded so the CSV text is the data)."""
    import numpy as np
    import pandas as pd
    from lifelines.datasets import load_rossi, load_waltons
    from linearmodels.datasets import card

    load_rossi().to_csv(HERE / "rossi.csv", index=False)
    load_waltons().to_csv(HERE / "waltons.csv", index=False)
    cols = ["lwage", "educ", "nearc4", "exper", "black", "south", "smsa"]
    c = card.load()[cols].copy()
    c["lwage"] = c["lwage"].round(6)
    c.to_csv(HERE / "card.csv", index=False)

    rng = np.random.default_rng(SEED)
    n = 1600
    treated = rng.random(n) >= 0.2
    age = rng.integers(18, 66, n)
    kontant = rng.random(n) < 0.4
    kind = rng.choice(["always", "never", "complier"], size=n, p=[0.4, 0.15, 0.45])
    received = (kind == "always") | ((kind == "complier") & treated)
    hazard = 0.045 * np.where(received, 1.35, 1.0) * np.where(kontant, 0.6, 1.0)
    hazard *= np.exp(-0.012 * (age - 40))
    weeks = rng.geometric(np.clip(hazard, 0.005, 0.5)) - 1  # week index of the job, from 0
    follow_up = np.where(rng.random(n) < 0.3, rng.integers(30, 52, n), 52)
    noise = rng.normal(0.0, 2.0, n)
    frame = pd.DataFrame(
        {
            "group": np.where(treated, "treatment", "control"),
            "employed": (weeks < 26).astype(int),
            "received": received.astype(int),
            # jobs up to week 60 are on file; the analysis must censor at the follow-up
            "weeks_to_job": np.where(weeks <= 60, weeks, np.nan),
            "follow_up_weeks": follow_up,
            "benefit_weeks": np.clip(np.minimum(weeks, 52) + noise, 0, None).round(3),
            "age": age,
            "target_group": np.where(kontant, "kontanthjaelp", "dagpenge"),
        }
    )
    frame.to_csv(HERE / "trial_seeded.csv", index=False)


def km_reference(duration: Any, event: Any) -> dict[str, list[float]]:
    """lifelines' Kaplan-Meier (exponential Greenwood interval) at the event times."""
    from lifelines import KaplanMeierFitter

    kmf = KaplanMeierFitter(alpha=ALPHA).fit(duration, event)
    table = kmf.event_table
    times = table.index[table["observed"] > 0]
    ci = kmf.confidence_interval_.loc[times]
    return {
        "times": [float(t) for t in times],
        "survival": kmf.survival_function_.loc[times].iloc[:, 0].tolist(),
        "ci_low": ci.iloc[:, 0].tolist(),
        "ci_high": ci.iloc[:, 1].tolist(),
        "at_risk": [int(a) for a in table.loc[times, "at_risk"]],
    }


def survival_reference(duration: Any, event: Any, treated: Any, labels: tuple[str, str]) -> dict:
    """KM per arm and lifelines' log-rank test."""
    from lifelines.statistics import logrank_test

    t, c = treated, ~treated
    test = logrank_test(duration[t], duration[c], event[t], event[c])
    return {
        "km": {
            labels[0]: km_reference(duration[t], event[t]),
            labels[1]: km_reference(duration[c], event[c]),
        },
        "logrank": {"chi2": float(test.test_statistic), "p_value": float(test.p_value)},
    }


def ols_reference(y: Any, treated: Any, x: Any) -> dict[str, dict[str, float]]:
    """statsmodels OLS: ITT ``y ~ 1 + T`` (HC2 = Neyman) and Lin's ``y ~ 1 + T + Xc + T Xc``."""
    import numpy as np
    import statsmodels.api as sm

    t = treated.astype(float)
    out: dict[str, dict[str, float]] = {}
    fit = sm.OLS(y, np.column_stack([np.ones_like(t), t])).fit(cov_type="HC2")
    out["itt"] = {"estimate": float(fit.params[1]), "se": float(fit.bse[1])}
    if x is not None:
        xc = x - x.mean(axis=0)
        design = np.column_stack([np.ones_like(t), t, xc, xc * t[:, None]])
        for hc in ("HC2", "HC3"):
            lin = sm.OLS(y, design).fit(cov_type=hc)
            out[f"lin_{hc}"] = {"estimate": float(lin.params[1]), "se": float(lin.bse[1])}
    return out


def iv_reference(y: Any, treated: Any, d: Any) -> dict[str, float]:
    """linearmodels IV2SLS ``y ~ 1 + [d ~ z]``, robust covariance (debiased=False)."""
    import numpy as np
    import pandas as pd
    from linearmodels.iv import IV2SLS

    frame = pd.DataFrame({"y": y, "d": d, "z": treated.astype(float), "const": 1.0})
    res = IV2SLS(frame["y"], frame[["const"]], frame[["d"]], frame[["z"]]).fit(cov_type="robust")
    diag = res.first_stage.diagnostics
    return {
        "late": float(res.params["d"]),
        "se": float(res.std_errors["d"]),
        "f_stat": float(diag.loc["d", "f.stat"]),
        "f_pval": float(diag.loc["d", "f.pval"]),
        "rate_treatment": float(np.mean(d[treated])),
        "rate_control": float(np.mean(d[~treated])),
    }


def mde_reference(y: Any, treated: Any, binary: bool) -> dict[str, float]:
    """``(z_{1-a/2} + z_{0.8}) SE_pooled``: scipy's normal quantiles times statsmodels' SE.

    ``SE_pooled = SD sqrt(1/n_t + 1/n_c)`` with ``SD = sqrt(p_c (1 - p_c))`` at the control
    rate for a 0/1 outcome and statsmodels ``CompareMeans.std_meandiff_pooledvar`` for a
    continuous one. Cross-checked against statsmodels ``NormalIndPower`` solved for the effect
    size (one-sided at ``alpha / 2``, so the far tail the convention ignores is not counted);
    its root finder agrees only to about 1e-6, hence the closed form is stored.
    """
    import math

    from scipy.stats import norm
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

    n_t, n_c = int(treated.sum()), int((~treated).sum())
    scale = math.sqrt(1 / n_t + 1 / n_c)
    if binary:
        p_c = float(y[~treated].mean())
        sd = math.sqrt(p_c * (1 - p_c))
    else:
        cm = CompareMeans(DescrStatsW(y[treated]), DescrStatsW(y[~treated]))
        sd = float(cm.std_meandiff_pooledvar) / scale
    mde = float(norm.ppf(1 - ALPHA / 2) + norm.ppf(0.8)) * sd * scale
    es = NormalIndPower().solve_power(
        effect_size=None,
        nobs1=n_t,
        alpha=ALPHA / 2,
        power=0.8,
        ratio=n_c / n_t,
        alternative="larger",
    )
    if abs(float(es) * sd - mde) > 1e-5 * mde:
        msg = f"NormalIndPower disagrees: {float(es) * sd} vs {mde}"
        raise AssertionError(msg)
    return {"mde": mde, "sd": sd}


def _durations(frame: Any, time: str, event: str | None, horizon: float) -> tuple[Any, Any]:
    """Censoring at ``min(follow_up_weeks, horizon)``, written independently of nbi."""
    import numpy as np

    t = frame[time].to_numpy(dtype=float)
    limit = np.full(len(frame), horizon)
    if "follow_up_weeks" in frame:
        limit = np.minimum(limit, frame["follow_up_weeks"].to_numpy(dtype=float))
    known = ~np.isnan(t)
    raw = frame[event].to_numpy(dtype=bool) if event else known
    observed = raw & known & (np.where(known, t, np.inf) <= limit)
    censored_at = np.minimum(np.where(known & ~raw, t, np.inf), limit)
    return np.where(observed, t, censored_at), observed


CASES: list[dict[str, Any]] = [
    {
        "name": "rossi_52_weeks",
        "data": "rossi.csv",
        "spec": {
            "group_col": "fin",
            "treatment_label": "1",
            "control_label": "0",
            "outcome_col": "arrest",
            "time_col": "week",
            "event_col": "arrest",
            "horizon": 52,
            "covariates": ["age", "prio", "wexp", "race"],
        },
    },
    {
        "name": "rossi_cut_at_40_weeks",
        "data": "rossi.csv",
        "spec": {
            "group_col": "fin",
            "treatment_label": "1",
            "control_label": "0",
            "outcome_col": "arrest",
            "time_col": "week",
            "event_col": "arrest",
            "horizon": 40,
        },
    },
    {
        "name": "waltons_70_weeks",
        "data": "waltons.csv",
        "spec": {
            "group_col": "group",
            "treatment_label": "miR-137",
            "control_label": "control",
            "outcome_col": "E",
            "time_col": "T",
            "event_col": "E",
            "horizon": 70,
        },
    },
    {
        "name": "card_continuous_iv",
        "data": "card.csv",
        "spec": {
            "group_col": "nearc4",
            "treatment_label": "1",
            "control_label": "0",
            "outcome_col": "lwage",
            "received_col": "educ",
            "covariates": ["exper", "black", "south", "smsa"],
        },
    },
    {
        "name": "seeded_binary_two_sided",
        "data": "trial_seeded.csv",
        "spec": {
            "outcome_col": "employed",
            "received_col": "received",
            "horizon": 52,
            "covariates": ["age", "target_group"],
        },
    },
    {
        "name": "seeded_continuous",
        "data": "trial_seeded.csv",
        "spec": {
            "outcome_col": "benefit_weeks",
            "received_col": "received",
            "horizon": 39,
            "covariates": ["age", "target_group"],
        },
    },
]


def case_reference(case: dict[str, Any]) -> dict[str, Any]:
    """All reference figures of one case, computed from its CSV as read back."""
    import numpy as np
    import pandas as pd

    spec = case["spec"]
    frame = pd.read_csv(HERE / case["data"])
    labels = (spec.get("treatment_label", "treatment"), spec.get("control_label", "control"))
    treated = frame[spec.get("group_col", "group")].astype(str).to_numpy() == labels[0]
    y = frame[spec["outcome_col"]].to_numpy(dtype=float)
    binary = bool(np.isin(y, (0.0, 1.0)).all())
    x = None
    if spec.get("covariates"):
        x = pd.get_dummies(frame[spec["covariates"]], drop_first=True, dtype=float).to_numpy()
    out: dict[str, Any] = {"outcome_type": "binary" if binary else "continuous"}
    out.update(ols_reference(y, treated, x))
    out.update(mde_reference(y, treated, binary))
    if spec.get("received_col"):
        d = frame[spec["received_col"]].to_numpy(dtype=float)
        out["iv"] = iv_reference(y, treated, d)
    time = spec.get("time_col") or ("weeks_to_job" if "weeks_to_job" in frame else None)
    if time:
        duration, event = _durations(frame, time, spec.get("event_col"), float(spec["horizon"]))
        out["survival"] = survival_reference(duration, event, treated, labels)
    return out


def main() -> None:
    """Write the data files and ``trial_reference.json``."""
    import lifelines
    import linearmodels
    import statsmodels

    write_data()
    doc = {
        "versions": {
            "lifelines": lifelines.__version__,
            "statsmodels": statsmodels.__version__,
            "linearmodels": linearmodels.__version__,
        },
        "alpha": ALPHA,
        "cases": [{**case, "expected": case_reference(case)} for case in CASES],
    }
    (HERE / "trial_reference.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()

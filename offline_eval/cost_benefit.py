"""Net value of the recommender in DKK from a trial file (the RCT's cost-benefit view).

Per citizen, the public cost is the benefit paid within the follow-up (``benefit_dkk``) plus
the cost of the programme they received (``programme_cost_dkk``; 0 when the column is absent).
The **net value per citizen** of having the recommender is the control arm's mean cost minus
the treatment arm's: positive means the recommender saves money. Its 95 % interval is the
Neyman (Welch) normal interval of a difference in means, valid because the arms are
randomised (the outer RCT does not adapt). The benefit days saved are ``5 x`` the difference in
mean ``benefit_weeks`` (5 benefit days a week, domain.md 5.3), with the same kind of interval.
"""

from __future__ import annotations

import html
import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from bandit.rewards import BENEFIT_DAYS_PER_WEEK

_Z95 = 1.959963984540054
BENEFIT_COLUMN = "benefit_dkk"
COST_COLUMN = "programme_cost_dkk"
WEEKS_COLUMN = "benefit_weeks"


@dataclass(frozen=True, slots=True)
class Difference:
    """Control mean minus treatment mean with a 95 % Neyman interval."""

    estimate: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True, slots=True)
class TrialNetValue:
    """The trial's cost-benefit: mean cost per arm and the net value of the recommender."""

    n_treatment: int
    n_control: int
    cost_treatment: float
    cost_control: float
    programme_cost_treatment: float
    programme_cost_control: float
    net_value_per_citizen: Difference
    benefit_days_saved_per_citizen: Difference | None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return asdict(self)


def _difference(control: np.ndarray, treatment: np.ndarray) -> Difference:
    est = float(control.mean() - treatment.mean())
    se = math.sqrt(
        float(control.var(ddof=1)) / len(control) + float(treatment.var(ddof=1)) / len(treatment)
    )
    return Difference(est, est - _Z95 * se, est + _Z95 * se)


def trial_net_value(
    frame: pd.DataFrame,
    group_col: str = "group",
    treatment: str = "treatment",
    control: str = "control",
) -> TrialNetValue | None:
    """The net value of the recommender, or ``None`` when ``frame`` has no ``benefit_dkk``.

    Raises
    ------
    ValueError
        When an arm has fewer than 2 citizens or a cost is missing or negative.

    Examples
    --------
    >>> f = pd.DataFrame({"group": ["treatment"] * 2 + ["control"] * 2,
    ...                   "benefit_dkk": [1000.0, 3000.0, 4000.0, 6000.0],
    ...                   "programme_cost_dkk": [500.0, 500.0, 0.0, 0.0]})
    >>> trial_net_value(f).net_value_per_citizen.estimate  # (4000+6000)/2 - (1500+3500)/2
    2500.0
    """
    if BENEFIT_COLUMN not in frame.columns:
        return None
    arms = frame[group_col].astype(str)
    cost = pd.to_numeric(frame[BENEFIT_COLUMN], errors="coerce").to_numpy(dtype=float)
    programme = (
        pd.to_numeric(frame[COST_COLUMN], errors="coerce").to_numpy(dtype=float)
        if COST_COLUMN in frame.columns
        else np.zeros(len(frame))
    )
    total = cost + programme
    if not np.all(np.isfinite(total)) or float(total.min(initial=0.0)) < 0:
        msg = f"`{BENEFIT_COLUMN}` and `{COST_COLUMN}` must be numbers >= 0 in every row"
        raise ValueError(msg)
    t, c = (arms == treatment).to_numpy(), (arms == control).to_numpy()
    if t.sum() < 2 or c.sum() < 2:  # noqa: PLR2004
        msg = f"need at least 2 citizens per arm for the net value, got {t.sum()} / {c.sum()}"
        raise ValueError(msg)
    days = None
    if WEEKS_COLUMN in frame.columns:
        weeks = pd.to_numeric(frame[WEEKS_COLUMN], errors="coerce").to_numpy(dtype=float)
        if np.all(np.isfinite(weeks)):
            d = _difference(weeks[c], weeks[t])
            days = Difference(
                *(BENEFIT_DAYS_PER_WEEK * x for x in (d.estimate, d.ci_low, d.ci_high))
            )
    return TrialNetValue(
        n_treatment=int(t.sum()),
        n_control=int(c.sum()),
        cost_treatment=float(total[t].mean()),
        cost_control=float(total[c].mean()),
        programme_cost_treatment=float(programme[t].mean()),
        programme_cost_control=float(programme[c].mean()),
        net_value_per_citizen=_difference(total[c], total[t]),
        benefit_days_saved_per_citizen=days,
    )


def net_value_lines(nv: TrialNetValue) -> list[str]:
    """The terminal lines of ``nbi experiment``'s net-value section."""
    d = nv.net_value_per_citizen
    lines = [
        "net value (DKK, control - treatment cost; benefit + programme)",
        _line("  mean cost t / c", f"{nv.cost_treatment:,.0f} / {nv.cost_control:,.0f}"),
        _line(
            "  of which programme t / c",
            f"{nv.programme_cost_treatment:,.0f} / {nv.programme_cost_control:,.0f}",
        ),
        _line(
            "  net value per citizen", f"{d.estimate:+,.0f}  [{d.ci_low:+,.0f}, {d.ci_high:+,.0f}]"
        ),
    ]
    if nv.benefit_days_saved_per_citizen is not None:
        b = nv.benefit_days_saved_per_citizen
        lines.append(
            _line(
                "  benefit days saved per cit.",
                f"{b.estimate:+.2f}  [{b.ci_low:+.2f}, {b.ci_high:+.2f}]",
            )
        )
    return lines


def _line(label: str, value: str) -> str:
    """``label`` padded to ``nbi experiment``'s value column (31), with at least 2 spaces."""
    return f"{label:<29}  {value}"


def net_value_section(nv: TrialNetValue) -> list[str]:
    """The HTML report's cost-benefit section."""
    d = nv.net_value_per_citizen
    rows = [
        ("Citizens (treatment / control)", f"{nv.n_treatment:,} / {nv.n_control:,}"),
        ("Mean cost per citizen, treatment", f"{nv.cost_treatment:,.0f} DKK"),
        ("Mean cost per citizen, control", f"{nv.cost_control:,.0f} DKK"),
        (
            "Programme cost per citizen (treatment / control)",
            f"{nv.programme_cost_treatment:,.0f} / {nv.programme_cost_control:,.0f} DKK",
        ),
        (
            "Net value per citizen (95 % CI)",
            f"{d.estimate:+,.0f} DKK [{d.ci_low:+,.0f}, {d.ci_high:+,.0f}]",
        ),
        (
            "Net value per 1,000 citizens (95 % CI)",
            f"{d.estimate * 1000:+,.0f} DKK [{d.ci_low * 1000:+,.0f}, {d.ci_high * 1000:+,.0f}]",
        ),
    ]
    if nv.benefit_days_saved_per_citizen is not None:
        b = nv.benefit_days_saved_per_citizen
        rows.append(
            (
                "Benefit days saved per citizen (95 % CI)",
                f"{b.estimate:+.2f} [{b.ci_low:+.2f}, {b.ci_high:+.2f}]",
            )
        )
    body = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return [
        '<h2 id="cost-benefit">Cost-benefit (DKK)</h2>',
        "<p>Cost per citizen = benefit paid within the follow-up + the programme received. "
        "Net value = control mean cost &minus; treatment mean cost (positive: the recommender "
        "saves money), with a Neyman 95&nbsp;% interval. Programme costs are the catalog's, "
        "defaults marked as assumptions (docs/cost_benefit.md).</p>",
        f"<table><tbody>{body}</tbody></table>",
    ]

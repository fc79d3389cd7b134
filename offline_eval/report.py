"""Self-contained HTML report: the answer first, then the detail (``nbi report``).

The page opens with the findings a municipality asks for (the trial's effect with its
interval, the effect on compliers, power and information time, the best candidate policy
from the off-policy evaluation, the fairness verdict), followed by one section per analysis:
the trial (arms, effects, design checks, cluster design, Kaplan-Meier curves with the
log-rank test), the off-policy estimates (forest plot and tables with the effective sample
size) and the fairness audit (effects by group, recommendation rates as a heatmap).

Figures are PNG embedded as base64 (:mod:`offline_eval.report_plots`); the page loads
nothing from elsewhere, fits a 1280 px window without horizontal scrolling and prints on A4.
"""

from __future__ import annotations

import html
import math
import numbers
import re
from collections.abc import Callable, Collection, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bandit.importance import ImportanceReport
from offline_eval import formatting as fmt
from offline_eval import report_plots
from offline_eval.cost_benefit import TrialNetValue, net_value_section
from offline_eval.evaluation import PolicyEvaluation
from offline_eval.experiment import ExperimentResult, Survival
from offline_eval.fairness import FairnessReport
from offline_eval.report_importance import importance_section
from offline_eval.report_monitoring import MonitoringSummary, monitoring_section
from offline_eval.stats import Effect

PRIMARY_ESTIMATORS = ("dr", "sndr", "snips", "ips")
"""The estimator the summary quotes: the first of these that was run (else the first run)."""
LOW_ESS_SHARE = 0.10
WEAK_F = 10.0

_CSS = """
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;padding:0 1.25rem;color:#1b1f23;background:#fff;line-height:1.45;
font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:62rem;margin:0 auto;padding:1.25rem 0 3rem}
h1{font-size:1.6rem;margin:.2rem 0 .2rem}
h2{font-size:1.25rem;margin:2.2rem 0 .6rem;padding-bottom:.25rem;border-bottom:2px solid #d0d7de}
h3{font-size:1.05rem;margin:1.4rem 0 .4rem}
p,li{max-width:48rem}
.meta{color:#57606a;font-size:.9rem;margin:0 0 1rem;overflow-wrap:anywhere}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(17rem,1fr));gap:.8rem}
.card{border:1px solid #d0d7de;border-left:5px solid #0b5cad;border-radius:6px;
padding:.7rem .9rem;background:#f6f8fa;min-width:0;overflow-wrap:anywhere}
.card.warn{border-left-color:#c2410c}
.card.good{border-left-color:#15803d}
.card h3{margin:0 0 .3rem;font-size:.95rem;color:#57606a;font-weight:600}
.card .big{font-size:1.45rem;font-weight:700;margin:0;font-variant-numeric:tabular-nums}
.card .ci{margin:.1rem 0 .4rem;font-variant-numeric:tabular-nums}
.card p{margin:.3rem 0;font-size:.92rem}
.table-wrap{max-width:100%;overflow-x:auto;margin:.4rem 0 1rem}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;font-size:.9rem}
th,td{padding:.3rem .55rem;border-bottom:1px solid #d8dee4;vertical-align:top;text-align:right}
table.wide{width:100%}
th{background:#f6f8fa;font-weight:600;overflow-wrap:normal}
th.text,td.text{text-align:left}
td.text{overflow-wrap:break-word;min-width:5rem}
td.num,.nw{white-space:nowrap}
td .sub{display:block;color:#57606a;font-size:.8rem}
tr.flag td{background:#fef2f2}
figure{margin:.6rem 0 1.2rem}
figure img{display:block;max-width:100%;height:auto}
figcaption{color:#57606a;font-size:.85rem;margin-top:.3rem;max-width:48rem}
code{font-size:.9em;overflow-wrap:anywhere}
.note{color:#57606a;font-size:.88rem}
footer{margin-top:2.5rem;color:#57606a;font-size:.85rem}
@media print{
@page{size:A4;margin:14mm}
body{padding:0;font-size:10pt}
main{max-width:none;padding:0}
h2{break-after:avoid}
.card,figure,tr{break-inside:avoid}
.table-wrap{overflow:visible}
table{font-size:8.5pt}
th,td{padding:.2rem .3rem}
td.num{white-space:normal}
.card{background:none}
}
"""


@dataclass(frozen=True)
class Information:
    """How many outcomes are known at the analysis date (information time)."""

    known: int
    total: int
    horizon: float

    @property
    def share(self) -> float:
        """Known outcomes as a share of the citizens in the file."""
        return self.known / self.total if self.total else math.nan


def information(survival: Survival | None, n_total: int) -> Information | None:
    """Outcomes known: a job observed, or followed the whole horizon (``None``: no time data)."""
    if survival is None:
        return None
    data = survival.data
    known = (data.event > 0) | (data.duration >= data.horizon - 1e-9)
    return Information(int(np.count_nonzero(known)), n_total, data.horizon)


def _e(text: object) -> str:
    return html.escape(str(text))


def _code(name: object) -> str:
    """A column or policy name as code, breakable after ``:``, ``_``, ``/`` and ``.``."""
    parts = re.split(r"(?<=[:_/.])", str(name))
    return "<code>" + "<wbr>".join(html.escape(p) for p in parts if p) + "</code>"


WIDE_TABLE_COLUMNS = 6
"""Tables with this many columns take the full column width, so that cells wrap less."""


def _table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, text_cols: Collection[int] = (0,)
) -> str:
    """HTML table of pre-formatted HTML cells; columns in ``text_cols`` are left-aligned text.

    A row whose last cell is ``"harm"`` is highlighted (the fairness table's flag).
    """

    def kind(i: int) -> str:
        return "text" if i in text_cols else "num"

    head = "".join(f'<th class="{kind(i)}" scope="col">{_e(h)}</th>' for i, h in enumerate(headers))
    body = []
    for row in rows:
        flag = ' class="flag"' if row and row[-1] == "harm" else ""
        cells = "".join(f'<td class="{kind(i)}">{c}</td>' for i, c in enumerate(row))
        body.append(f"<tr{flag}>{cells}</tr>")
    wide = ' class="wide"' if len(headers) >= WIDE_TABLE_COLUMNS else ""
    return (
        f'<div class="table-wrap"><table{wide}><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _figure(b64: str, alt: str, caption: str) -> str:
    return (
        f'<figure><img alt="{_e(alt)}" src="data:image/png;base64,{b64}"/>'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _card(title: str, big: str, ci: str, body: Sequence[str], kind: str = "") -> str:
    paras = "".join(f"<p>{b}</p>" for b in body if b)
    ci_html = f'<p class="ci">{ci}</p>' if ci else ""
    return (
        f'<div class="card {kind}"><h3>{_e(title)}</h3><p class="big">{big}</p>'
        f"{ci_html}{paras}</div>"
    )


# --- the trial -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Units:
    """How the trial's outcome is shown: rates and percentage points, or outcome units."""

    binary: bool
    decimals: int

    def level(self, x: float) -> str:
        return fmt.pct(x, self.decimals) if self.binary else fmt.number(x, self.decimals)

    def diff(self, x: float) -> str:
        return fmt.pp(x, self.decimals) if self.binary else fmt.number(x, self.decimals, sign=True)

    def interval(self, e: Effect) -> str:
        kind = "pp" if self.binary else "number"
        return fmt.interval(e.ci_low, e.ci_high, kind, self.decimals)


def _units(result: ExperimentResult) -> _Units:
    binary = result.outcome_type == "binary"
    scale = 100.0 if binary else 1.0
    hi = 2 if binary else 3
    return _Units(
        binary, fmt.decimals_for(result.itt.se, scale=scale, lo=1 if binary else 0, hi=hi)
    )


def _verdict(e: Effect, units: _Units, mde: float, outcome: str) -> str:
    if e.ci_low > 0:
        return f"The whole interval lies above zero: the recommender raised {_code(outcome)}."
    if e.ci_high < 0:
        return f"The whole interval lies below zero: the recommender lowered {_code(outcome)}."
    return (
        "The interval includes zero: the trial cannot yet tell the recommender from no "
        f"recommender. Effects as large as {units.diff(e.ci_high)} are still possible; the trial "
        f"detects {units.diff(mde).lstrip('+')} with 80&nbsp;% power."
    )


def _trial_cards(result: ExperimentResult) -> list[str]:
    u = _units(result)
    e = result.itt
    level = "rate" if u.binary else "mean"
    cluster = "" if result.cluster is None else f" (cluster-robust {result.cluster.fit.se_type})"
    cards = [
        _card(
            "Effect of the recommender (intention to treat)",
            u.diff(e.estimate),
            f"95&nbsp;% CI {u.interval(e)} · {_e(fmt.p_value(e.p_value))}{cluster}",
            [
                f"{_code(result.outcome_col)} {level}: {u.level(result.employment_treatment)}"
                f" with the recommender vs {u.level(result.employment_control)} without "
                f"({fmt.count(result.n_treatment)} / {fmt.count(result.n_control)} citizens).",
                _verdict(e, u, result.mde, result.outcome_col),
            ],
            "good" if e.ci_low > 0 else "warn" if e.ci_high < 0 else "",
        )
    ]
    c = result.compliance
    if c is not None:
        fs = c.first_stage
        weak = fs.weak
        cards.append(
            _card(
                "Effect on compliers (2SLS)",
                u.diff(c.late.estimate),
                f"95&nbsp;% CI {u.interval(c.late)} · {_e(fmt.p_value(c.late.p_value))}",
                [
                    f"Received ({_code(result.received_col)}): "
                    f"{fmt.pct(c.rate_treatment)} in the recommender arm vs "
                    f"{fmt.pct(c.rate_control)} in the control arm.",
                    f"First-stage F = {fmt.number(fs.f_stat, 1 if fs.f_stat < 100 else 0)}"
                    + (
                        " — <strong>weak instrument</strong> (F &lt; 10): do not rely on this figure."
                        if weak
                        else " (strong)."
                    ),
                ],
                "warn" if weak else "",
            )
        )
    cards.append(_power_card(result, u))
    return cards


def _power_card(result: ExperimentResult, u: _Units) -> str:
    info = information(result.survival, result.n_treatment + result.n_control)
    basis = "at the control rate" if u.binary else "with the pooled SD"
    body = [
        f"Minimum detectable effect (80&nbsp;% power, 5&nbsp;% two-sided) {basis}"
        + (" and the clusters' design effect" if result.cluster is not None else "")
        + "."
    ]
    if info is None:
        body.append(
            "Information time: no time-to-event column, so every row is taken as a known outcome."
        )
        headline_info = ""
    else:
        pending = info.total - info.known
        body.append(
            f"Information time: {fmt.count(info.known)} of {fmt.count(info.total)} outcomes known "
            f"({fmt.pct(info.share, 0)}); {fmt.count(pending)} citizens are still inside their "
            f"{fmt.number(info.horizon, 0)}-week follow-up."
        )
        headline_info = f" · {fmt.pct(info.share, 0)} of outcomes known"
    s = result.srm
    if s.mismatch:
        body.append(
            f"<strong>Sample-ratio mismatch</strong>: control share {fmt.pct(s.observed_share)} "
            f"vs {fmt.pct(s.expected_share)} planned ({_e(fmt.p_value(s.p_value))}); check the "
            "randomisation before trusting any effect."
        )
    else:
        body.append(
            f"Control share {fmt.pct(s.observed_share)} vs {fmt.pct(s.expected_share)} planned "
            f"({_e(fmt.p_value(s.p_value))}): randomisation looks as configured."
        )
    return _card(
        "Power and information",
        f"MDE {u.diff(result.mde).lstrip('+')}",
        f"{fmt.count(result.n_treatment + result.n_control)} citizens{headline_info}",
        body,
        "warn" if s.mismatch else "",
    )


def _effects_rows(result: ExperimentResult, u: _Units) -> list[list[str]]:
    cl = result.cluster
    itt_method = (
        "difference in means, Neyman SE"
        if cl is None
        else f"difference in means, {cl.fit.se_type} cluster-robust, {fmt.number(cl.fit.df, 1)} df"
    )
    rows: list[tuple[str, Effect, str]] = [("Intention to treat", result.itt, itt_method)]
    if result.lin is not None:
        kind = result.hc if cl is None else cl.fit.se_type
        rows.append(
            ("Intention to treat, covariate-adjusted", result.lin, f"Lin regression, {kind}")
        )
    if result.compliance is not None:
        rows.append(("Effect on compliers", result.compliance.late, "Wald / 2SLS, robust HC0"))
    return [
        [
            _e(name),
            u.diff(e.estimate),
            u.interval(e),
            _e(fmt.p_value(e.p_value).removeprefix("p = ")),
            fmt.number(100 * e.se if u.binary else e.se, u.decimals + 1),
            _e(method),
        ]
        for name, e, method in rows
    ]


def _trial_section(result: ExperimentResult) -> list[str]:
    u = _units(result)
    kind = "rate" if u.binary else "mean"
    arms = [
        [
            "Recommender (treatment)",
            fmt.count(result.n_treatment),
            u.level(result.employment_treatment),
        ],
        [
            "No recommender (control)",
            fmt.count(result.n_control),
            u.level(result.employment_control),
        ],
    ]
    headers = ["Arm", "Citizens", f"{result.outcome_col} ({kind})"]
    if result.compliance is not None:
        headers.append(f"received ({result.received_col})")
        arms[0].append(fmt.pct(result.compliance.rate_treatment))
        arms[1].append(fmt.pct(result.compliance.rate_control))
    se_head = "SE (pp)" if u.binary else "SE"
    parts = [
        '<h2 id="trial">The trial: recommender vs no recommender</h2>',
        f"<p>Outcome {_code(result.outcome_col)} ({result.outcome_type}). "
        "Citizens were randomised to the recommender arm or the control arm; the intention-to-treat "
        "effect compares the arms as randomised, whatever the caseworker then did.</p>",
        _table(headers, arms),
        "<h3>Effects</h3>",
        _table(
            ["Estimate", "Effect", "95 % interval", "p", se_head, "Method"],
            _effects_rows(result, u),
            text_cols=(0, 5),
        ),
    ]
    if result.received_missing:
        parts.append(
            f'<p class="note">{fmt.count(result.received_missing)} empty values of '
            f"{_code(result.received_col)} were counted as not received.</p>"
        )
    parts += _design_rows(result, u)
    if result.cluster is not None:
        parts += _cluster_section(result)
    if result.survival is not None:
        parts += _survival_section(result)
    return parts


def _design_rows(result: ExperimentResult, u: _Units) -> list[str]:
    s = result.srm
    info = information(result.survival, result.n_treatment + result.n_control)
    rows = [
        [
            "Control share (sample-ratio check)",
            f"{fmt.pct(s.observed_share)} observed vs {fmt.pct(s.expected_share)} planned, "
            f"χ² = {fmt.number(s.chi2, 2)}, {_e(fmt.p_value(s.p_value))}"
            + (" — <strong>mismatch</strong>" if s.mismatch else ""),
        ],
        [
            "Minimum detectable effect",
            f"{u.diff(result.mde).lstrip('+')} (80&nbsp;% power, 5&nbsp;% two-sided"
            + (
                f", control rate {fmt.pct(result.employment_control)})"
                if u.binary
                else f", pooled SD {fmt.number(result.outcome_sd, u.decimals)})"
            ),
        ],
    ]
    if info is not None:
        rows.append(
            [
                "Outcomes known (information time)",
                f"{fmt.count(info.known)} of {fmt.count(info.total)} ({fmt.pct(info.share)}): "
                f"a job observed or followed the full {fmt.number(info.horizon, 0)} weeks",
            ]
        )
    return ["<h3>Design checks</h3>", _table(["Check", "Result"], rows, text_cols=(0, 1))]


def _cluster_section(result: ExperimentResult) -> list[str]:
    cl = result.cluster
    assert cl is not None  # noqa: S101 (the caller checks)
    fit = cl.fit
    rows = [
        ["Randomisation unit", f"{_code(result.cluster_col)}"],
        [
            "Clusters (recommender / control)",
            f"{fmt.count(fit.n_clusters)} ({fmt.count(fit.n_clusters_treatment)} / {fmt.count(fit.n_clusters_control)})",
        ],
        ["Mean cluster size", fmt.number(cl.mean_cluster_size, 1)],
        ["Intra-cluster correlation (ICC)", fmt.number(cl.icc, 3)],
        ["Design effect", fmt.number(cl.design_effect, 2)],
        ["Interval", f"{fit.se_type} cluster-robust SE, Bell-McCaffrey {fmt.number(fit.df, 1)} df"],
    ]
    return [
        "<h3>Cluster randomisation</h3>",
        "<p>The control arm was assigned by cluster, so citizens of one cluster share their arm; "
        "intervals and the MDE account for the correlation within clusters.</p>",
        _table(["", "Value"], rows, text_cols=(0, 1)),
    ]


def _km_point(survival: Survival, arm: str, t: float) -> str:
    km = survival.km[arm]
    idx = int(np.searchsorted(km.times, t, side="right")) - 1
    if idx < 0:
        return f"{fmt.pct(1.0)}"
    low, high = float(km.ci_low[idx]), float(km.ci_high[idx])
    band = (
        f"{fmt.number(100 * low, 1)}–{fmt.pct(high)}"
        if fmt.finite(low) and fmt.finite(high)
        else ""
    )
    return f'{fmt.pct(km.survival[idx])}<span class="sub">{band}</span>'


def _survival_section(result: ExperimentResult) -> list[str]:
    surv = result.survival
    assert surv is not None  # noqa: S101 (the caller checks)
    h = surv.data.horizon
    points = sorted({max(1.0, round(h / 4)), max(1.0, round(h / 2)), h})
    n_arm = [result.n_treatment, result.n_control]
    rows = []
    for k, (arm, km) in enumerate(surv.km.items()):
        median = km.median()
        rows.append(
            [
                _e(arm),
                fmt.count(n_arm[k] if k < len(n_arm) else math.nan),
                fmt.count(float(km.events.sum())),
                "not reached" if median is None else f"{fmt.number(median, 0)} wk",
                *(_km_point(surv, arm, t) for t in points),
            ]
        )
    headers = [
        "Arm",
        "Citizens",
        "Jobs found",
        "Median time to job",
        *(f"No job at {fmt.number(t, 0)} wk" for t in points),
    ]
    lr = surv.logrank
    return [
        "<h3>Time to a job (Kaplan-Meier)</h3>",
        _figure(
            report_plots.plot_km(surv),
            "Kaplan-Meier curves per arm",
            f"Share still without a job, by weeks since the decision, per arm; shaded: pointwise "
            f"95&nbsp;% interval (Greenwood, log-log scale). Follow-up {fmt.number(h, 0)} weeks from "
            f"{_code(surv.data.time_col)}; citizens followed for less are censored.",
        ),
        _table(headers, rows),
        f"<p>Log-rank test of equal curves: χ² = {fmt.number(lr.chi2, 2)} (1 df), "
        f"{_e(fmt.p_value(lr.p_value))}. Small grey figures: 95&nbsp;% interval.</p>",
        ""
        if result.cluster is None
        else '<p class="note">The curves, their bands and the log-rank test treat citizens as '
        "independent; with randomisation by cluster they are too narrow (the effects above "
        "are cluster-robust).</p>",
    ]


# --- off-policy evaluation -----------------------------------------------------------------


def _primary(ev: PolicyEvaluation) -> object | None:
    by_name = {e.estimator: e for e in ev.estimates}
    for name in PRIMARY_ESTIMATORS:
        if name in by_name:
            return by_name[name]
    return ev.estimates[0] if ev.estimates else None


def _is_rate(evaluations: Sequence[PolicyEvaluation]) -> bool:
    values = [ev.logged_value for ev in evaluations] + [
        e.value for ev in evaluations for e in ev.estimates
    ]
    return all(fmt.finite(v) and -1e-9 <= v <= 1 + 1e-9 for v in values)


def _value_formatter(as_rate: bool) -> tuple[Callable[[float], str], Callable[[float, float], str]]:
    if as_rate:

        def clip(x: float) -> float:
            return min(max(x, 0.0), 1.0)

        return (
            lambda v: fmt.pct(v),
            lambda lo, hi: fmt.interval(clip(lo), clip(hi), "pct", 1),
        )
    return (lambda v: fmt.number(v, 3), lambda lo, hi: fmt.interval(lo, hi, "number", 3))


def best_policy(evaluations: Sequence[PolicyEvaluation]) -> PolicyEvaluation | None:
    """The candidate with the highest lower interval end of its primary estimator."""
    scored = []
    for ev in evaluations:
        est = _primary(ev)
        low = getattr(est, "ci_low", math.nan)
        if est is not None and fmt.finite(low):
            scored.append((low, ev))
    return max(scored, key=lambda pair: pair[0])[1] if scored else None


def _ope_card(evaluations: Sequence[PolicyEvaluation]) -> str | None:
    best = best_policy(evaluations)
    if best is None:
        return None
    est = _primary(best)
    as_rate = _is_rate(evaluations)
    value, span = _value_formatter(as_rate)
    d = best.diagnostics
    low_ess = d.ess_share < LOW_ESS_SHARE
    body = [
        f"{_code(best.policy)}, estimated by {_e(getattr(est, 'estimator', ''))}; "
        f"the logging policy achieved {value(best.logged_value)} on the same rounds.",
        f"Effective sample size {fmt.count(d.ess)} of {fmt.count(best.n_rounds)} rounds "
        f"({fmt.pct(d.ess_share, 0)})"
        + (
            ": <strong>few effective rounds</strong> — a hypothesis for the next trial, not a result."
            if low_ess
            else "."
        ),
        "Chosen by the lower end of the interval, so a noisy estimate does not win by luck.",
    ]
    if best.true_value is not None:
        body.append(f"True value in the simulation: {value(best.true_value)}.")
    return _card(
        "Best candidate policy (off-policy)",
        f"{value(getattr(est, 'value', math.nan))}",
        f"95&nbsp;% CI {span(getattr(est, 'ci_low', math.nan), getattr(est, 'ci_high', math.nan))}",
        body,
        "warn" if low_ess else "",
    )


def _ope_section(evaluations: Sequence[PolicyEvaluation]) -> list[str]:
    as_rate = _is_rate(evaluations)
    value, span = _value_formatter(as_rate)
    logged = evaluations[0].logged_value if evaluations else math.nan
    has_truth = any(ev.true_value is not None for ev in evaluations)
    summary = []
    for ev in evaluations:
        est = _primary(ev)
        d = ev.diagnostics
        v = getattr(est, "value", math.nan)
        gain = (
            fmt.pp(v - ev.logged_value)
            if as_rate
            else fmt.number(v - ev.logged_value, 3, sign=True)
        )
        row = [
            f"{_code(ev.policy)}",
            _e(getattr(est, "estimator", "")),
            value(v),
            span(getattr(est, "ci_low", math.nan), getattr(est, "ci_high", math.nan)),
            gain,
            f'{fmt.count(d.ess)}<span class="sub">{fmt.pct(d.ess_share, 0)}</span>',
            fmt.number(d.max_weight, 1),
            fmt.pct(d.unsupported_share),
        ]
        if has_truth:
            row.append(value(ev.true_value) if ev.true_value is not None else fmt.MISSING)
        summary.append(row)
    headers = [
        "Policy",
        "Estimator",
        "Value",
        "95 % interval",
        "vs logging",
        "ESS",
        "Max weight",
        "Unsupported",
    ]
    if has_truth:
        headers.append("True value")
    detail = [
        [
            f"{_code(ev.policy)}",
            _e(e.estimator),
            value(e.value),
            span(e.ci_low, e.ci_high),
            _e(e.method),
        ]
        for ev in evaluations
        for e in ev.estimates
    ]
    notes = "".join(f"<li>{_code(ev.policy)}: {_e(ev.note)}</li>" for ev in evaluations if ev.note)
    return [
        '<h2 id="ope">Candidate policies (off-policy evaluation)</h2>',
        "<p>What each candidate policy would have achieved on the logged decisions, estimated "
        "from the logging policy's known probabilities. The effective sample size (ESS) says "
        "how many logged rounds the estimate effectively rests on; a small ESS means a wide, "
        "fragile interval.</p>",
        _figure(
            report_plots.plot_policy_values(evaluations, as_rate=as_rate, logged_value=logged),
            "off-policy estimates per policy and estimator",
            "Estimate and 95&nbsp;% interval per policy and estimator; dashed: the logging "
            "policy's value on the same rounds"
            + ("; red cross: the true value (simulation)." if has_truth else "."),
        ),
        "<h3>Summary per policy</h3>",
        _table(headers, summary, text_cols=(0, 1)),
        "<h3>All estimators</h3>",
        _table(
            ["Policy", "Estimator", "Value", "95 % interval", "Interval method"],
            detail,
            text_cols=(0, 1, 4),
        ),
        f'<ul class="note">{notes}</ul>' if notes else "",
        '<p class="note">Intervals of a share are cut at 0&nbsp;% and 100&nbsp;%.</p>'
        if as_rate
        else "",
    ]


# --- fairness ------------------------------------------------------------------------------


def _fairness_card(report: FairnessReport) -> str:
    flagged = report.flagged
    alpha = fmt.pct(report.alpha, 0)
    tested = f"{fmt.count(report.n_tested)} of {fmt.count(len(report.groups))} groups tested"
    if report.groups.empty:
        return _card(
            "Fairness (do-no-harm audit)",
            "Not audited",
            "",
            ["The audit file has no protected-attribute column."],
        )
    if report.n_tested == 0:
        return _card(
            "Fairness (do-no-harm audit)",
            "No group could be tested",
            tested,
            ["Each group needs 2 or more citizens in both arms and some variation in the outcome."],
            "warn",
        )
    if not flagged:
        untested = report.untested
        return _card(
            "Fairness (do-no-harm audit)",
            "No group flagged",
            tested,
            [
                f"One-sided test of harm per protected group, Holm-adjusted at {alpha}.",
                f"Not tested (too few citizens or no variation): {_e(', '.join(untested))}."
                if untested
                else "",
            ],
            "good",
        )
    return _card(
        "Fairness (do-no-harm audit)",
        f"{len(flagged)} group{'s' if len(flagged) > 1 else ''} flagged",
        ", ".join(_e(f) for f in flagged),
        [
            f"Significantly worse off with the recommender (one-sided, Holm-adjusted at {alpha}); see the fairness section."
        ],
        "warn",
    )


def _fairness_row(r: dict[Hashable, Any]) -> list[str]:
    def x(key: str) -> float:
        v = r.get(key)
        return float(v) if isinstance(v, numbers.Real) else math.nan

    return [
        f'<span class="nw">{_e(r["attribute"])}: {_e(r["level"])}</span>',
        f"{fmt.count(x('n_treatment'))} / {fmt.count(x('n_control'))}",
        fmt.pct(x("employment_treatment")),
        fmt.pct(x("employment_control")),
        fmt.pp(x("effect")),
        fmt.interval(x("effect_ci_low"), x("effect_ci_high"), "pp", 1),
        fmt.pct(x("override_rate"), 0),
        _e(fmt.p_value(x("p_harm_holm")).removeprefix("p = ")),
        "harm" if bool(r.get("harm_flag")) else "",
    ]


def _fairness_section(report: FairnessReport) -> list[str]:
    g = report.groups
    parts = [
        '<h2 id="fairness">Fairness audit</h2>',
        "<p>The trial's effect within each protected group, with a one-sided test of harm "
        f"(Holm-adjusted across groups, margin {fmt.pp(report.margin, 1, sign=False)}).</p>",
    ]
    if not g.empty:
        parts.append(
            _figure(
                report_plots.plot_fairness_effects(g),
                "effect per protected group",
                "Effect of the recommender on employment per group with 95&nbsp;% interval; red: "
                "flagged as harmed.",
            )
        )
        rows = [_fairness_row(r) for r in g.to_dict(orient="records")]
        headers = [
            "Group",
            "Citizens (t / c)",
            "Employed, treatment",
            "Employed, control",
            "Effect",
            "95 % interval",
            "Override",
            "p (harm, Holm)",
            "Flag",
        ]
        parts.append(_table(headers, rows))
    rates = report.recommendation_rates
    if not rates.empty:
        parts += [
            "<h3>What the recommender suggests to whom</h3>",
            _figure(
                report_plots.plot_recommendation_heatmap(rates),
                "recommendation rates by group and family",
                "Share (%) of each group's recommender-arm citizens whose recommendation was "
                "each intervention family.",
            ),
        ]
    return parts


# --- the page ------------------------------------------------------------------------------


def render_html(
    *,
    evaluations: Sequence[PolicyEvaluation] = (),
    experiment: ExperimentResult | None = None,
    fairness: FairnessReport | None = None,
    cost_benefit: TrialNetValue | None = None,
    monitoring: MonitoringSummary | None = None,
    importance: ImportanceReport | None = None,
    title: str = "nbi evaluation report",
    sources: Sequence[tuple[str, str]] = (),
) -> str:
    """The whole report as one HTML string (no external resources).

    ``sources`` are ``(label, file name)`` pairs listed under the title; ``cost_benefit``
    (:func:`offline_eval.cost_benefit.trial_net_value`) adds the cost-benefit section;
    ``importance`` (``nbi importance --out``) the feature importance of a model version.
    """
    cards: list[str] = []
    body: list[str] = []
    if experiment is not None:
        cards += _trial_cards(experiment)
        body += _trial_section(experiment)
    if evaluations:
        card = _ope_card(evaluations)
        cards += [card] if card else []
        body += _ope_section(evaluations)
    if fairness is not None:
        cards.append(_fairness_card(fairness))
        body += _fairness_section(fairness)
    if cost_benefit is not None:
        body += net_value_section(cost_benefit)
    if monitoring is not None:
        body += monitoring_section(monitoring)  # parity of scarce seats, drift
    if importance is not None:
        body += importance_section(importance)
    meta = " · ".join(f"{_e(label)}: {_code(name)}" for label, name in sources)
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">{meta}</p>' if meta else "",
        '<h2 id="summary">Summary</h2>',
        f'<div class="cards">{"".join(cards)}</div>',
        *body,
        '<footer>Intervals are 95&nbsp;%; "pp" = percentage points. Written by <code>nbi report</code>.</footer>',
        "</main></body></html>",
    ]
    return "\n".join(p for p in parts if p)

"""The report's parity and drift section (``nbi report``), from the files it already reads.

Parity (the audit file: ``nbi export --protected`` or the simulator's decisions): per group of
each attribute present (``gender``, ``origin``, ``age_band`` and, where the columns exist, the
need groups ``target_group`` and ``long_term_unemployed`` from ``weeks_unemployed``), over the
recommender arm: the share recommended a scarce family (private wage subsidy or internship),
the share that received one (recommended and followed), and the employment rate; per
attribute and measure, the smallest over the largest group rate among groups with at least
``min_group`` citizens, flagged below 0.8 (the four-fifths rule; the service's alert rules use
the same threshold). The fairness section's heatmap shows every family; this table is about
the scarce seats.

Drift (the logged-bandit file, which carries each decision's ``timestamp`` and context): the
population stability index of each context feature, the later half of the period against the
earlier half (:mod:`offline_eval.drift`; above 0.25 is a major shift). The model's calibration
is monitored by the service (``nbi_drift_calibration_*``): the exported files carry no
predictions.

Human oversight: the parity table's ``overridden`` column is the share of each group's
recorded assignments that differ from the suggestion (the files' ``followed``); with ``nbi
report --oversight FILE`` (the service's ``GET /v1/oversight``) the section adds the override
rates per caseworker (pseudonymised) and job centre (:mod:`offline_eval.report_oversight`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from offline_eval import formatting as fmt
from offline_eval.drift import FEATURES, feature_psi
from offline_eval.report_oversight import oversight_section

SCARCE_FAMILIES = ("private_wage_subsidy", "private_internship")
FOUR_FIFTHS = 0.8
MAJOR_SHIFT = 0.25
MODERATE_SHIFT = 0.1
LONG_TERM_WEEKS = 52
_ATTRIBUTES = ("gender", "origin", "age_band", "target_group", "long_term_unemployed")
NO_RATIO = frozenset({"overridden"})
"""Measures shown per group without a four-fifths ratio (not an allocation)."""


@dataclass(frozen=True)
class MonitoringSummary:
    """Parity rows (attribute, group, n, measures) and ratios; PSI per feature."""

    parity: pd.DataFrame
    ratios: dict[tuple[str, str], float]
    psi: dict[str, float]
    min_group: int
    oversight: Mapping[str, Any] | None = None
    """The JSON of the service's ``GET /v1/oversight`` (:mod:`offline_eval.report_oversight`)."""


def _treated(frame: pd.DataFrame, group_col: str) -> pd.DataFrame:
    if group_col not in frame.columns:
        return frame.iloc[0:0]
    rows = frame[frame[group_col].astype(str) == "treatment"].copy()
    if "weeks_unemployed" in rows.columns and "long_term_unemployed" not in rows.columns:
        weeks = pd.to_numeric(rows["weeks_unemployed"], errors="coerce")
        rows["long_term_unemployed"] = (weeks >= LONG_TERM_WEEKS).map({True: "yes", False: "no"})
    return rows


def parity_table(
    frame: pd.DataFrame, group_col: str, outcome_col: str, *, min_group: int = 30
) -> tuple[pd.DataFrame, dict[tuple[str, str], float]]:
    """Per attribute and group: n, scarce recommended, scarce received, employed; and ratios.

    Examples
    --------
    >>> f = pd.DataFrame({"group": ["treatment"] * 4, "employed": [1, 0, 1, 1],
    ...                   "gender": ["male", "male", "female", "female"],
    ...                   "recommended_family": ["private_internship", "private_internship",
    ...                                          "mentor", "private_internship"]})
    >>> table, ratios = parity_table(f, "group", "employed", min_group=2)
    >>> table[["group", "n", "recommended"]].to_dict("list")
    {'group': ['female', 'male'], 'n': [2, 2], 'recommended': [0.5, 1.0]}
    >>> ratios[("gender", "recommended")], ratios[("gender", "employed")]
    (0.5, 0.5)
    """
    rows = _treated(frame, group_col)
    measures: dict[str, pd.Series] = {}
    if "recommended_family" in rows.columns:
        scarce = rows["recommended_family"].astype(str).isin(SCARCE_FAMILIES)
        measures["recommended"] = scarce.astype(float)
        if "followed" in rows.columns:
            followed = rows["followed"].fillna(False).astype(bool)
            measures["received"] = (scarce & followed).astype(float)
    if outcome_col in rows.columns:
        measures["employed"] = pd.to_numeric(rows[outcome_col], errors="coerce")
    if "followed" in rows.columns:  # human oversight: share of assignments not as suggested
        followed = rows["followed"]
        measures["overridden"] = (1.0 - followed.astype(float)).where(followed.notna())
    out = []
    ratios: dict[tuple[str, str], float] = {}
    for attribute in (a for a in _ATTRIBUTES if a in rows.columns):
        levels = rows[attribute].fillna("unknown").astype(str)
        table = pd.DataFrame({"level": levels, **measures}).groupby("level", sort=True)
        summary = table.mean(numeric_only=True)
        summary["n"] = table.size()
        for level, r in summary.iterrows():
            out.append(
                {"attribute": attribute, "group": level, "n": int(r["n"])}
                | {m: float(r[m]) for m in measures}
            )
        big = summary[summary["n"] >= min_group]
        for m in (m for m in measures if m not in NO_RATIO):
            values = big[m].dropna()
            enough = len(values) >= 2 and values.max() > 0  # noqa: PLR2004
            ratios[(attribute, m)] = float(values.min() / values.max()) if enough else math.nan
    return pd.DataFrame(out), ratios


def log_drift(frame: pd.DataFrame, *, bins: int = 10, min_rows: int = 50) -> dict[str, float]:
    """PSI of each context feature in ``frame``: later half of the period vs earlier half."""
    if "timestamp" not in frame.columns or len(frame) < 2 * min_rows:
        return {}
    ordered = frame.sort_values("timestamp", kind="stable")
    half = len(ordered) // 2
    present = [f for f in FEATURES if f in ordered.columns]
    if not present:
        return {}
    early = [
        {str(k): v for k, v in r.items()} for r in ordered.iloc[:half][present].to_dict("records")
    ]
    late = [
        {str(k): v for k, v in r.items()} for r in ordered.iloc[half:][present].to_dict("records")
    ]
    psi = feature_psi(early, late, bins=bins, min_decisions=min_rows)
    return {f: psi[f] for f in present}


def _e(text: object) -> str:
    import html

    return html.escape(str(text))


def _ratio_cell(x: float) -> str:
    if math.isnan(x):
        return "–"
    flag = " ⚠" if x < FOUR_FIFTHS else ""
    return f"{x:.2f}{flag}"


def _reading(psi: float) -> str:
    if math.isnan(psi):
        return "too few decisions"
    if psi > MAJOR_SHIFT:
        return "major shift"
    return "moderate shift" if psi > MODERATE_SHIFT else "stable"


def monitoring_section(summary: MonitoringSummary) -> list[str]:
    """The HTML of the parity and drift section."""
    parts = [
        '<h2 id="parity">Parity of scarce seats and drift</h2>',
        "<p>Recommender arm. Scarce families: private wage subsidies and internships. "
        "Ratio = smallest over largest group rate among groups with at least "
        f"{fmt.count(summary.min_group)} citizens; ⚠ below 0.8 (four-fifths rule, as the "
        "service's alerts). <i>overridden</i>: share of the recorded assignments that differ "
        "from the suggestion (human oversight; per caseworker and job centre: "
        "<code>GET /v1/oversight</code>, <code>nbi report --oversight</code>).</p>",
    ]
    p = summary.parity
    if not p.empty:
        measures = [
            m for m in ("recommended", "received", "employed", "overridden") if m in p.columns
        ]
        head = "".join(f"<th>{_e(h)}</th>" for h in ("Group", "Citizens", *measures))
        body = []
        for attribute, rows in p.groupby("attribute", sort=False):
            for r in rows.to_dict("records"):
                cells = [f"{_e(attribute)}: {_e(r['group'])}", fmt.count(r["n"])]
                cells += [fmt.pct(r[m]) for m in measures]
                body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
            ratio = [
                ""
                if m in NO_RATIO
                else _ratio_cell(summary.ratios.get((str(attribute), m), math.nan))
                for m in measures
            ]
            cells = [f"<b>{_e(attribute)}: ratio</b>", "", *ratio]
            body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")
    if summary.psi:
        rows_html = "".join(
            f"<tr><td>{_e(f)}</td><td>{'–' if math.isnan(v) else f'{v:.3f}'}</td>"
            f"<td>{_reading(v)}</td></tr>"
            for f, v in summary.psi.items()
        )
        parts += [
            "<h3>Drift of the citizens' case facts</h3>",
            "<p>Population stability index, later half of the logged period vs the earlier "
            "half (below 0.1 stable, above 0.25 a major shift). The model's calibration is "
            "monitored by the service (<code>nbi_drift_calibration_*</code>).</p>",
            "<table><thead><tr><th>Feature</th><th>PSI</th><th>Reading</th></tr></thead>"
            f"<tbody>{rows_html}</tbody></table>",
        ]
    if summary.oversight is not None:
        parts += oversight_section(summary.oversight)
    return parts if (not p.empty or summary.psi or summary.oversight is not None) else []


def summarise(
    audit: pd.DataFrame | None,
    logs: pd.DataFrame | None,
    group_col: str,
    outcome_col: str,
    *,
    min_group: int = 30,
    oversight: Mapping[str, Any] | None = None,
) -> MonitoringSummary | None:
    """The section's figures from the audit file and the logged-bandit file (either may be
    missing) and the service's override rates (``oversight``, optional); ``None`` when none
    gives anything."""
    parity, ratios = (
        parity_table(audit, group_col, outcome_col, min_group=min_group)
        if audit is not None
        else (pd.DataFrame(), {})
    )
    psi = log_drift(logs) if logs is not None else {}
    if parity.empty and not psi and oversight is None:
        return None
    return MonitoringSummary(parity, ratios, psi, min_group, oversight)

"""Self-contained HTML report: tables plus PNG plots embedded as base64 (matplotlib Agg, lazy)."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any

import pandas as pd

from offline_eval.evaluation import PolicyEvaluation, estimates_table
from offline_eval.experiment import ExperimentResult
from offline_eval.fairness import FairnessReport


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    _pyplot().close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def plot_policy_values(evaluations: Sequence[PolicyEvaluation]) -> str:
    """Base64 PNG: estimated value per policy and estimator with 95 % intervals."""
    plt = _pyplot()
    table = estimates_table(evaluations)
    fig, ax = plt.subplots(figsize=(7, 0.35 * max(len(table), 4) + 1))
    labels = [f"{p} / {e}" for p, e in zip(table["policy"], table["estimator"], strict=True)]
    y = range(len(table))
    ax.errorbar(
        table["value"],
        list(y),
        xerr=[table["value"] - table["ci_low"], table["ci_high"] - table["value"]],
        fmt="o",
        capsize=3,
        label="estimate, 95 % CI",
    )
    if "true_value" in table.columns and table["true_value"].notna().any():
        ax.scatter(
            table["true_value"], list(y), marker="x", color="crimson", zorder=3, label="true value"
        )
        ax.legend(loc="best", fontsize="small")
    ax.set_yticks(list(y), labels)
    ax.invert_yaxis()
    ax.set_xlabel("estimated policy value (reward)")
    ax.set_title("Off-policy estimates with 95 % intervals")
    return _png(fig)


def plot_km(result: ExperimentResult) -> str:
    """Base64 PNG: Kaplan-Meier curves of time to employment per group."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, km in result.km.items():
        ax.step([0.0, *km.times.tolist()], [1.0, *km.survival.tolist()], where="post", label=label)
    ax.set_xlabel("weeks")
    ax.set_ylabel("share still without a job")
    ax.set_title("Kaplan-Meier: time to employment")
    ax.legend()
    return _png(fig)


def plot_fairness(report: FairnessReport) -> str:
    """Base64 PNG: treatment-vs-control effect per protected group with 95 % intervals."""
    plt = _pyplot()
    g = report.groups
    fig, ax = plt.subplots(figsize=(7, 0.35 * max(len(g), 4) + 1))
    labels = [f"{a}={v}" for a, v in zip(g["attribute"], g["level"], strict=True)]
    colors = ["tab:red" if f else "tab:blue" for f in g["harm_flag"]]
    ax.barh(range(len(g)), g["effect"], color=colors)
    ax.errorbar(
        g["effect"],
        range(len(g)),
        xerr=[g["effect"] - g["effect_ci_low"], g["effect_ci_high"] - g["effect"]],
        fmt="none",
        ecolor="black",
        capsize=3,
    )
    ax.axvline(0.0, color="grey", lw=1)
    ax.set_yticks(range(len(g)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("employment effect (treatment - control)")
    ax.set_title("Effect by group (red: flagged by the do-no-harm test)")
    return _png(fig)


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda x: f"{x:.4g}", border=0)


def _img(b64: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}"/>'


def render_html(
    *,
    evaluations: Sequence[PolicyEvaluation] = (),
    experiment: ExperimentResult | None = None,
    fairness: FairnessReport | None = None,
    title: str = "nbi offline evaluation report",
) -> str:
    """The whole report as one HTML string (no external resources)."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:auto}"
        "table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
        "</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if evaluations:
        parts += ["<h2>Policy values (off-policy)</h2>", _table(estimates_table(evaluations))]
        parts.append(_img(plot_policy_values(evaluations), "policy values"))
    if experiment is not None:
        d = experiment.to_dict()
        itt = experiment.itt
        parts += [
            "<h2>RCT: recommender vs no recommender</h2>",
            f"<p>ITT = {itt.estimate:.4f} (95 % CI {itt.ci_low:.4f} to {itt.ci_high:.4f}, "
            f"p = {itt.p_value:.3g}); n = {experiment.n_treatment} / {experiment.n_control}; "
            f"MDE = {experiment.mde:.4f}; sample-ratio p = {experiment.srm.p_value:.3g}.</p>",
            f"<pre>{html.escape(str(d))}</pre>",
        ]
        if experiment.km:
            parts.append(_img(plot_km(experiment), "Kaplan-Meier curves"))
    if fairness is not None:
        parts += ["<h2>Fairness audit</h2>", _table(fairness.groups)]
        if not fairness.groups.empty:
            parts.append(_img(plot_fairness(fairness), "fairness effects"))
        if not fairness.recommendation_rates.empty:
            parts += ["<h3>Recommendation rates</h3>", _table(fairness.recommendation_rates)]
    parts.append("</body></html>")
    return "\n".join(parts)

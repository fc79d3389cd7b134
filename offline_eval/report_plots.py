"""The report's figures as base64 PNG (matplotlib with the Agg backend, imported lazily).

Every figure is at most :data:`MAX_WIDTH_IN` inches wide at :data:`DPI` dots per inch, so
that the embedded image is never wider than the report's column (the HTML also scales it).
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from offline_eval.evaluation import PolicyEvaluation, estimates_table
from offline_eval.experiment import Survival

DPI = 110
MAX_WIDTH_IN = 8.6
_ARM_COLOURS = ("#0b5cad", "#c2410c", "#15803d", "#7c3aed")
_FLAG_COLOUR = "#b91c1c"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png(fig: Any) -> str:
    """Close ``fig`` and return it as a base64 PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    _pyplot().close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _percent_label(v: float, *, sign: bool = False, unit: str = "%") -> str:
    x = 100.0 * v
    decimals = 0 if abs(x - round(x)) < 1e-6 else 1
    text = f"{x:.{decimals}f}"
    if text.strip("-0.") == "":
        return f"0 {unit}"
    if text.startswith("-"):
        text = "\u2212" + text[1:]
    elif sign:
        text = "+" + text
    return f"{text} {unit}"


def _percent_axis(axis: Any, *, sign: bool = False, unit: str = "%") -> None:
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _pos: _percent_label(v, sign=sign, unit=unit)))


def plot_policy_values(
    evaluations: Sequence[PolicyEvaluation], *, as_rate: bool, logged_value: float | None
) -> str:
    """Forest plot: each policy's estimate per estimator with its interval.

    Rows are grouped by policy; the logging policy's value on the same rounds is a dashed
    line and a known true value (simulator logs) a red cross.
    """
    plt = _pyplot()
    table = estimates_table(evaluations)
    estimators = list(dict.fromkeys(table["estimator"]))
    n = len(table)
    fig, ax = plt.subplots(figsize=(MAX_WIDTH_IN, 0.28 * n + 1.4))
    y = np.arange(n, dtype=float)
    for k, name in enumerate(estimators):
        rows = (table["estimator"] == name).to_numpy()
        value = table["value"].to_numpy(dtype=float)[rows]
        low = table["ci_low"].to_numpy(dtype=float)[rows]
        high = table["ci_high"].to_numpy(dtype=float)[rows]
        if as_rate:  # a share's interval is cut at 0 and 1, as in the report's tables
            low, high = np.clip(low, 0.0, 1.0), np.clip(high, 0.0, 1.0)
        ax.errorbar(
            value,
            y[rows],
            xerr=[np.maximum(value - low, 0.0), np.maximum(high - value, 0.0)],
            fmt="o",
            ms=4,
            capsize=2,
            color=plt.get_cmap("tab10")(k % 10),
            label=name,
        )
    if "true_value" in table.columns and table["true_value"].notna().any():
        truth = table["true_value"].to_numpy(dtype=float)
        ax.scatter(truth, y, marker="x", color=_FLAG_COLOUR, zorder=3, label="true")
    if logged_value is not None and math.isfinite(logged_value):
        ax.axvline(logged_value, color="grey", ls="--", lw=1, label="logging policy")
    policies = list(dict.fromkeys(table["policy"]))
    for i, policy in enumerate(policies):
        rows = np.flatnonzero((table["policy"] == policy).to_numpy())
        if i % 2 == 0:
            ax.axhspan(rows.min() - 0.5, rows.max() + 0.5, color="#f1f3f5", zorder=0)
    ax.set_yticks(
        y, [f"{p} · {e}" for p, e in zip(table["policy"], table["estimator"], strict=True)]
    )
    ax.tick_params(axis="y", labelsize=8)
    ax.set_ylim(n - 0.5, -0.5)
    if as_rate:
        _percent_axis(ax.xaxis)
    ax.set_xlabel("estimated value (share employed)" if as_rate else "estimated value (reward)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    ax.grid(axis="x", color="#e5e7eb")
    return png(fig)


def plot_km(survival: Survival) -> str:
    """Kaplan-Meier curves per arm with their pointwise (exponential Greenwood) bands."""
    plt = _pyplot()
    horizon = survival.data.horizon
    fig, ax = plt.subplots(figsize=(MAX_WIDTH_IN * 0.8, 4.2))
    for k, (arm, km) in enumerate(survival.km.items()):
        colour = _ARM_COLOURS[k % len(_ARM_COLOURS)]
        times = np.concatenate([[0.0], km.times, [horizon]])
        surv = np.concatenate([[1.0], km.survival, [km.survival[-1] if km.times.size else 1.0]])
        low = np.concatenate([[1.0], km.ci_low, [km.ci_low[-1] if km.times.size else 1.0]])
        high = np.concatenate([[1.0], km.ci_high, [km.ci_high[-1] if km.times.size else 1.0]])
        keep = times <= horizon
        ax.step(times[keep], surv[keep], where="post", color=colour, lw=1.8, label=arm)
        ax.fill_between(
            times[keep], low[keep], high[keep], step="post", color=colour, alpha=0.18, lw=0
        )
    ax.set_xlim(0, horizon)
    ax.set_ylim(0, 1.02)
    _percent_axis(ax.yaxis)
    ax.set_xlabel("weeks since the decision")
    ax.set_ylabel("still without a job")
    ax.grid(color="#e5e7eb")
    ax.legend(title="arm (band: 95 % interval)", fontsize="small", title_fontsize="small")
    return png(fig)


def plot_fairness_effects(groups: pd.DataFrame) -> str:
    """Forest plot of the effect (treatment - control) per protected group; flagged in red."""
    plt = _pyplot()
    n = len(groups)
    fig, ax = plt.subplots(figsize=(MAX_WIDTH_IN * 0.8, 0.32 * n + 1.2))
    y = np.arange(n, dtype=float)
    flags = groups["harm_flag"].to_numpy(dtype=bool)
    for mask, colour in ((~flags, "#0b5cad"), (flags, _FLAG_COLOUR)):
        if not mask.any():
            continue
        effect = groups["effect"].to_numpy(dtype=float)[mask]
        low = groups["effect_ci_low"].to_numpy(dtype=float)[mask]
        high = groups["effect_ci_high"].to_numpy(dtype=float)[mask]
        ax.errorbar(
            effect,
            y[mask],
            xerr=[effect - low, high - effect],
            fmt="o",
            ms=4,
            capsize=2,
            color=colour,
        )
    ax.axvline(0.0, color="grey", lw=1)
    labels = [f"{a}: {v}" for a, v in zip(groups["attribute"], groups["level"], strict=True)]
    ax.set_yticks(y, labels)
    ax.set_ylim(n - 0.5, -0.5)
    _percent_axis(ax.xaxis, sign=True, unit="pp")
    ax.set_xlabel("effect on employment (treatment − control), 95 % interval")
    ax.grid(axis="x", color="#e5e7eb")
    return png(fig)


def plot_recommendation_heatmap(rates: pd.DataFrame) -> str:
    """Heatmap: share of each group's treatment-arm citizens recommended each family."""
    plt = _pyplot()
    table = rates.assign(row=rates["attribute"].astype(str) + ": " + rates["level"].astype(str))
    rows = list(dict.fromkeys(table["row"]))
    grid = table.pivot_table(index="row", columns="family", values="rate", aggfunc="first")
    grid = grid.reindex(index=rows).fillna(0.0)
    values = grid.to_numpy(dtype=float)
    n_rows, n_cols = values.shape
    width = min(MAX_WIDTH_IN, 2.0 + 0.62 * n_cols)
    fig, ax = plt.subplots(figsize=(width, 0.34 * n_rows + 1.6))
    top = max(float(values.max()), 1e-9)
    im = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=top, aspect="auto")
    for i in range(n_rows):
        for j in range(n_cols):
            v = values[i, j]
            ax.text(
                j,
                i,
                f"{100 * v:.0f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if v > 0.6 * top else "#1b1f23",
            )
    ax.set_xticks(range(n_cols), [str(c).replace("_", " ") for c in grid.columns])
    ax.tick_params(axis="x", labelrotation=40, labelsize=8)
    plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
    ax.set_yticks(range(n_rows), rows)
    ax.tick_params(axis="y", labelsize=8)
    bar = fig.colorbar(im, ax=ax, fraction=0.035, pad=0.02)
    _percent_axis(bar.ax.yaxis)
    return png(fig)

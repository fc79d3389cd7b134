"""PNG plots and a self-contained HTML report of a replay (matplotlib Agg, imported lazily)."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import pandas as pd

from bandit.jsonsafe import dumps


def _figure(kind: str, weekly: pd.DataFrame, policy: str) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=100)
    treat = weekly[weekly["group"] == "treatment"]
    control = weekly[weekly["group"] == "control"]
    if kind == "learning_curve":
        ax.plot(treat["week"], treat["regret_mean"], label=f"{policy}: mean regret per decision")
        ax.set_ylabel("true regret (P(job within H))")
        ax.set_title("Learning curve (treatment recommendations)")
    elif kind == "cumulative_regret":
        ax.plot(treat["week"], treat["cumulative_regret"], label=policy)
        ax.set_ylabel("cumulative regret (expected jobs)")
        ax.set_title("Cumulative regret vs the oracle")
    else:
        ax.plot(treat["week"], treat["true_employment"], label="treatment (true)")
        ax.plot(control["week"], control["true_employment"], label="control (true)")
        ax.plot(
            treat["week"], treat["employment_rate"], ":", alpha=0.6, label="treatment (realised)"
        )
        ax.plot(
            control["week"], control["employment_rate"], ":", alpha=0.6, label="control (realised)"
        )
        ax.set_ylabel("employed within H")
        ax.set_title("Employment by decision week: treatment vs control")
    ax.set_xlabel("decision week")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


PLOTS = ("learning_curve", "cumulative_regret", "employment")
VALUE_LINES = (
    ("oracle", ":"),
    ("observable_oracle", "--"),
    ("best_noncontextual", "-."),
    ("practice", "-"),
    ("uniform", "-"),
    ("none", ":"),
)


def value_figure(quarters: pd.DataFrame, policy: str) -> Any:
    """The served policy's TRUE value per quarter beside the reference policies."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.8), dpi=100)
    x = quarters["quarter"] + 1
    for name, style in VALUE_LINES:
        ax.plot(x, quarters[name], style, lw=1.2, label=name.replace("_", " "))
    ax.plot(x, quarters["policy"], "-o", lw=2.5, color="black", label=f"{policy} (served)")
    ax.set_xticks(list(x))
    ax.set_xlabel("quarter of simulated time")
    ax.set_ylabel("true P(job within H) if all follow")
    ax.set_title("Value of the suggestions vs reference policies")
    ax.legend(loc="best", fontsize=7)
    fig.tight_layout()
    return fig


def write_plots(weekly: pd.DataFrame, summary: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write one PNG per plot and ``report.html`` (PNGs embedded as base64) to ``out_dir``."""
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    images: list[str] = []
    for kind in PLOTS:
        fig = _figure(kind, weekly, str(summary.get("policy", "")))
        path = out_dir / f"{kind}.png"
        fig.savefig(path, metadata={"Software": None})
        plt.close(fig)
        paths.append(path)
        images.append(base64.b64encode(path.read_bytes()).decode("ascii"))
    quarters = pd.DataFrame(summary.get("quarterly_values") or [])
    if len(quarters):
        fig = value_figure(quarters, str(summary.get("policy", "")))
        path = out_dir / "values_by_quarter.png"
        fig.savefig(path, metadata={"Software": None})
        plt.close(fig)
        paths.append(path)
        images.insert(0, base64.b64encode(path.read_bytes()).decode("ascii"))
    kinds = (("values_by_quarter",) if len(quarters) else ()) + PLOTS
    body = "".join(
        f'<h2>{html.escape(k.replace("_", " "))}</h2><img alt="{k}" src="data:image/png;base64,{b}">'
        for k, b in zip(kinds, images, strict=True)
    )
    doc = (
        "<!doctype html><html><head><meta charset='utf-8'><title>nbi simulation</title></head>"
        f"<body><h1>nbi simulation: policy {html.escape(str(summary.get('policy')))}</h1>"
        f"<h2>Totals</h2><pre>{html.escape(dumps(summary.get('totals'), indent=2))}</pre>"
        f"<h2>RCT</h2><pre>{html.escape(dumps(summary.get('rct'), indent=2))}</pre>"
        f"{body}</body></html>"
    )
    report = out_dir / "report.html"
    report.write_text(doc, encoding="utf-8")
    paths.append(report)
    return paths

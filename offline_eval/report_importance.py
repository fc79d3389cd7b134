"""The feature-importance figure and report section (``nbi report --importance FILE``).

The input is the JSON document ``nbi importance --out FILE`` writes
(:class:`bandit.importance.ImportanceReport`); the figure is a base64 PNG like the report's
other figures (:mod:`offline_eval.report_plots`).
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from bandit.importance import ImportanceReport
from offline_eval.report_plots import MAX_WIDTH_IN, _pyplot, png


def read_importance(path: Path) -> ImportanceReport:
    """Read the file ``nbi importance --out`` wrote.

    Raises
    ------
    bandit.errors.InvalidInputError
        When the file is not such a document (a ``ValueError``).
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        msg = f"{path.name} is not JSON: {exc.msg}"
        raise ValueError(msg) from None
    return ImportanceReport.from_dict(data)


def plot_importance(report: ImportanceReport) -> str:
    """Horizontal bars: mean absolute change of the expected reward per permuted feature, with
    the standard deviation over the permutations as error bars; most important on top."""
    plt = _pyplot()
    features = report.features
    n = max(len(features), 1)
    fig, ax = plt.subplots(figsize=(MAX_WIDTH_IN * 0.75, 0.32 * n + 1.3))
    if not features:
        ax.text(0.5, 0.5, "too few logged decisions", ha="center", transform=ax.transAxes)
        ax.set_axis_off()
        return png(fig)
    y = np.arange(len(features), dtype=float)
    values = np.array([f.reward_change for f in features])
    spread = np.nan_to_num(np.array([f.reward_change_sd for f in features]))
    ax.barh(y, values, xerr=spread, color="#0b5cad", capsize=2, height=0.6)
    ax.set_yticks(y, [f.feature for f in features])
    ax.set_ylim(len(features) - 0.5, -0.5)
    ax.set_xlabel("mean |change of expected reward| when the feature is permuted (± sd)")
    ax.set_title(f"Feature importance of {report.version}", fontsize=10)
    ax.grid(axis="x", color="#e5e7eb")
    return png(fig)


def importance_table_rows(report: ImportanceReport) -> list[list[str]]:
    """Rows of the importance table: feature, reward change, pmf change, top choice changed,
    present (pre-formatted text)."""
    return [
        [
            f.feature,
            f"{f.reward_change:.4f} ± {f.reward_change_sd:.4f}",
            f"{f.pmf_change:.4f} ± {f.pmf_change_sd:.4f}",
            f"{100 * f.top_change:.1f} %",
            f"{100 * f.present:.0f} %",
        ]
        for f in report.features
    ]


IMPORTANCE_HEADERS = (
    "feature",
    "reward change ± sd",
    "pmf change ± sd",
    "top choice changed",
    "present",
)


def importance_section(report: ImportanceReport) -> list[str]:
    """The report's feature-importance section as HTML parts."""
    e = html.escape
    head = "".join(f'<th class="num" scope="col">{e(h)}</th>' for h in IMPORTANCE_HEADERS)
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{e(c)}</td>' for c in row) + "</tr>"
        for row in importance_table_rows(report)
    )
    return [
        '<h2 id="importance">Feature importance</h2>',
        f"<p>Model <code>{e(report.version)}</code> ({e(report.policy)}). {e(report.note)}</p>",
        f'<figure><img alt="Feature importance of {e(report.version)}" '
        f'src="data:image/png;base64,{plot_importance(report)}"/>'
        "<figcaption>Permutation importance: how much the model's expected reward for the "
        "logged offer moves when one case fact is shuffled across the decisions; the error "
        "bars are the standard deviation over the permutations.</figcaption></figure>",
        f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>",
    ]

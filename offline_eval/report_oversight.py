"""The report's human-oversight section (``nbi report --oversight FILE``).

``FILE`` is the JSON of the service's ``GET /v1/oversight`` (admin role; see
``service/oversight.py``): override (non-compliance) rates over the monitoring window, overall,
per caseworker (short pseudonyms, never raw ids), per job centre and per protected or need
group. The section lists the caseworkers flagged as overriding almost never (possible
rubber-stamping: automation bias), then the per-caseworker, per-job-centre and per-group
tables. Per protected group from the exported files, the parity table's *overridden* column
(:mod:`offline_eval.report_monitoring`) shows the same measure.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from offline_eval import formatting as fmt

MAX_ROWS = 50
"""Caseworkers listed (the flagged ones always are; then the most assignments first)."""
_KEYS = ("overall", "caseworkers", "jobcentres", "groups", "min_assignments", "low_rate")


def read_oversight(path: Path) -> dict[str, Any]:
    """Read and check the JSON of ``GET /v1/oversight``; raise ``ValueError`` if it is not one.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "o.json"
    >>> _ = p.write_text('{"overall": {}}')
    >>> read_oversight(p)
    Traceback (most recent call last):
    ...
    ValueError: Expected the JSON of GET /v1/oversight in o.json; missing: caseworkers, jobcentres, groups, min_assignments, low_rate
    """
    data = json.loads(path.read_text(encoding="utf-8"))
    missing = [k for k in _KEYS if not isinstance(data, dict) or k not in data]
    if missing:
        msg = (
            f"Expected the JSON of GET /v1/oversight in {path.name}; missing: {', '.join(missing)}"
        )
        raise ValueError(msg)
    return dict(data)


def _e(text: object) -> str:
    return html.escape(str(text))


def _rate(row: Mapping[str, Any]) -> str:
    rate = row.get("rate")
    return fmt.pct(None if rate is None else float(rate))


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _caseworker_rows(data: Mapping[str, Any]) -> list[list[str]]:
    rows = list(data["caseworkers"])
    rows.sort(key=lambda r: (not r.get("low_override", False), -int(r["assignments"])))
    return [
        [
            f"<code>{_e(r['key'])}</code>",
            fmt.count(r["assignments"]),
            fmt.count(r["overrides"]),
            _rate(r),
            "⚠ almost never overrides" if r.get("low_override") else "",
        ]
        for r in rows[:MAX_ROWS]
    ]


def oversight_section(data: Mapping[str, Any]) -> list[str]:
    """The HTML of the human-oversight section from :func:`read_oversight`'s data."""
    overall = data["overall"]
    flagged = int(data.get("caseworkers_low_override", 0))
    assessed = int(data.get("caseworkers_assessed", 0))
    window = data.get("window_days")
    parts = [
        '<h2 id="oversight">Human oversight: override rates</h2>',
        "<p>Share of assignments after a shown suggestion that differ from it"
        + (f", over the last {float(window):g} days" if window is not None else "")
        + f". Overall: {_rate(overall)} of {fmt.count(overall['assignments'])} assignments. "
        f"{fmt.count(flagged)} of {fmt.count(assessed)} caseworkers with at least "
        f"{fmt.count(data['min_assignments'])} assignments overrode at most "
        f"{fmt.pct(float(data['low_rate']))} (⚠: possible rubber-stamping, the "
        "<code>NbiCaseworkerRubberStamping</code> alert). Caseworkers and job centres are "
        "shown by pseudonym only.</p>",
    ]
    if data["caseworkers"]:
        shown = min(len(data["caseworkers"]), MAX_ROWS)
        parts += [
            f"<h3>Per caseworker ({shown} of {len(data['caseworkers'])})</h3>",
            _table(
                ("Caseworker", "Assignments", "Overrides", "Rate", ""),
                _caseworker_rows(data),
            ),
        ]
    if data["jobcentres"]:
        rows = [
            [f"<code>{_e(r['key'])}</code>", fmt.count(r["assignments"]), _rate(r)]
            for r in data["jobcentres"]
        ]
        parts += ["<h3>Per job centre</h3>", _table(("Job centre", "Assignments", "Rate"), rows)]
    if data["groups"]:
        rows = [
            [f"{_e(r['dimension'])}: {_e(r['group'])}", fmt.count(r["assignments"]), _rate(r)]
            for r in data["groups"]
        ]
        parts += ["<h3>Per group</h3>", _table(("Group", "Assignments", "Rate"), rows)]
    return parts

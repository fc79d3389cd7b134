"""Render a :class:`~service.model_card.ModelCard` as Markdown or self-contained HTML.

The HTML page loads nothing from elsewhere: the feature-importance plot is an embedded PNG
(:func:`offline_eval.report_importance.plot_importance`), as in ``nbi report``.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path

from service.model_card import ModelCard, Section

FORMATS = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html"}

_CSS = (
    "body{margin:0;padding:0 1.25rem;color:#1b1f23;"
    "font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif}"
    "main{max-width:62rem;margin:0 auto;padding:1.25rem 0 3rem}"
    "h2{font-size:1.2rem;margin:2rem 0 .5rem;border-bottom:2px solid #d0d7de}"
    ".meta{color:#57606a;font-size:.9rem}"
    "table{border-collapse:collapse;font-variant-numeric:tabular-nums;font-size:.9rem}"
    "th,td{padding:.3rem .55rem;border-bottom:1px solid #d8dee4;text-align:left;"
    "vertical-align:top}th{background:#f6f8fa}.wrap{overflow-x:auto}"
    "figure img{max-width:100%;height:auto}figcaption{color:#57606a;font-size:.85rem}"
    "@media print{@page{size:A4;margin:14mm}.wrap{overflow:visible}}"
)


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_section(section: Section) -> list[str]:
    lines = [f"## {section.title}", ""]
    for para in section.paragraphs:
        lines += [para, ""]
    if section.rows:
        lines.append("| " + " | ".join(_md_cell(h) for h in section.headers) + " |")
        lines.append("|" + "---|" * len(section.headers))
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in section.rows]
        lines.append("")
    if section.bullets:
        lines += [f"- {b}" for b in section.bullets]
        lines.append("")
    return lines


def to_markdown(card: ModelCard) -> str:
    """The card as Markdown (``##`` per section, pipe tables)."""
    lines = [
        f"# Model card: {card.version}",
        "",
        f"Generated {_when(card.generated_at)} by `nbi models card`.",
        "",
    ]
    for section in card.sections:
        lines += _md_section(section)
    return "\n".join(lines).rstrip() + "\n"


def _html_section(section: Section, card: ModelCard) -> list[str]:
    from offline_eval.report_importance import plot_importance

    e = html.escape
    slug = section.title.lower().replace(" ", "-")
    parts = [f'<h2 id="{e(slug)}">{e(section.title)}</h2>']
    parts += [f"<p>{e(p)}</p>" for p in section.paragraphs]
    if section.title == "Features" and card.importance.features:
        parts.append(
            f'<figure><img alt="Feature importance of {e(card.version)}" '
            f'src="data:image/png;base64,{plot_importance(card.importance)}"/>'
            "<figcaption>Mean absolute change of the expected reward for the logged offer when "
            "one case fact is permuted (± sd over the permutations).</figcaption></figure>"
        )
    if section.rows:
        head = "".join(f'<th scope="col">{e(h)}</th>' for h in section.headers)
        body = "".join(
            "<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in section.rows
        )
        parts.append(
            f'<div class="wrap"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>"
        )
    if section.bullets:
        parts.append("<ul>" + "".join(f"<li>{e(b)}</li>" for b in section.bullets) + "</ul>")
    return parts


def to_html(card: ModelCard) -> str:
    """The card as one self-contained HTML page."""
    e = html.escape
    title = f"Model card: {card.version}"
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{e(title)}</h1>",
        f'<p class="meta">Generated {e(_when(card.generated_at))} by <code>nbi models card'
        "</code>.</p>",
    ]
    for section in card.sections:
        parts += _html_section(section, card)
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


def card_format(path: Path, fmt: str | None = None) -> str:
    """``markdown`` or ``html``: ``fmt`` if given, else from the file's suffix.

    Raises
    ------
    ValueError
        Neither gives a known format.

    Examples
    --------
    >>> card_format(Path("card.md")), card_format(Path("x.txt"), "html")
    ('markdown', 'html')
    """
    if fmt is not None:
        chosen = {"md": "markdown", "markdown": "markdown", "html": "html"}.get(fmt.lower())
    else:
        chosen = FORMATS.get(path.suffix.lower())
    if chosen is None:
        msg = f"Cannot tell the card's format from {path.name!r}: use .md or .html (or --format)"
        raise ValueError(msg)
    return chosen


def write_card(card: ModelCard, path: Path, fmt: str | None = None) -> str:
    """Write ``card`` to ``path`` as Markdown or HTML; the format written."""
    chosen = card_format(path, fmt)
    text = to_markdown(card) if chosen == "markdown" else to_html(card)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return chosen

"""Small SVG charts for the overview page, drawn on the server (no script, no chart library).

Pure functions from numbers to markup; every label is escaped.
"""

from __future__ import annotations

from html import escape

from markupsafe import Markup

INK, ACCENT, WARN, MUTED = "#1f2937", "#4f46e5", "#f59e0b", "#9ca3af"


def daily_bars(days: list[dict], *, width: int = 720, height: int = 180) -> Markup:
    """Questions per day as bars, the abstained share of each in amber; the busiest day labelled."""
    if not days:
        return Markup('<p class="empty">No questions in this period yet.</p>')
    top = max(d["questions"] for d in days) or 1
    gap, left, bottom = 4, 28, 22
    bar = max(2.0, (width - left - gap * len(days)) / len(days))
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="questions per day, abstentions in amber">',
             f'<text x="0" y="12" class="axis">{top}</text>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" stroke="{MUTED}"/>']
    plot = height - bottom - 16
    for i, day in enumerate(days):
        x = left + i * (bar + gap)
        total = plot * day["questions"] / top
        held = plot * day["abstained"] / top
        y = height - bottom - total
        title = escape(f'{day["day"]}: {day["questions"]} questions, {day["abstained"]} abstained')
        parts.append(f'<g><title>{title}</title>'
                     f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{total - held:.1f}" rx="2" fill="{ACCENT}"/>'
                     f'<rect x="{x:.1f}" y="{y + total - held:.1f}" width="{bar:.1f}" height="{held:.1f}" fill="{WARN}"/></g>')
    for i in sorted({0, len(days) - 1}):
        x, anchor = (left, "start") if i == 0 else (left + i * (bar + gap) + bar, "end")
        parts.append(f'<text x="{x:.1f}" y="{height - 6}" text-anchor="{anchor}" class="axis">'
                     f'{escape(str(days[i]["day"])[5:])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def share_bar(parts: list[tuple[str, int, str]], *, width: int = 320) -> Markup:
    """One horizontal bar split into labelled shares, e.g. 👍 vs 👎."""
    total = sum(n for _, n, _ in parts)
    if not total:
        return Markup('<p class="empty">Nothing yet.</p>')
    x, pieces = 0.0, [f'<svg class="chart share" viewBox="0 0 {width} 28" role="img">']
    for label, n, colour in parts:
        w = width * n / total
        pieces.append(f'<g><title>{escape(label)}: {n}</title><rect x="{x:.1f}" y="0" width="{w:.1f}" height="28" '
                      f'fill="{colour}"/></g>')
        x += w
    pieces.append("</svg>")
    return Markup("".join(pieces))


def ranked_bars(items: list[tuple[str, int, str | None]], *, width: int = 720) -> Markup:
    """Horizontal bars, longest first, each labelled (and linked when a URL is given)."""
    if not items:
        return Markup('<p class="empty">Nothing yet.</p>')
    top = max(n for _, n, _ in items) or 1
    rows = []
    for label, n, url in items:
        name = escape(label)
        if url:
            name = f'<a href="{escape(url)}" rel="noopener noreferrer">{name}</a>'
        rows.append(f'<div class="rank"><div class="rank-label">{name}</div>'
                    f'<progress class="rank-bar" value="{n}" max="{top}">{n}</progress>'  # no inline style: the CSP forbids it
                    f'<div class="rank-n">{n}</div></div>')
    return Markup("".join(rows))

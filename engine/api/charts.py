"""Small SVG charts for the overview page, drawn on the server (no script, no chart library).

Pure functions from numbers to markup; every label is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from markupsafe import Markup

INK, ACCENT, WARN, MUTED, GRID = "#1f2937", "#4f46e5", "#f59e0b", "#9ca3af", "#eef0f3"


def _ticks(top: int) -> list[int]:
    """Two to five round values from 0 up to at least ``top`` for the y axis: 1, 2 or 5 times a power of ten apart."""
    power = 1
    while True:
        for factor in (1, 2, 5):
            step = factor * power
            count = max(1, -(-top // step))  # steps needed to reach top (at least one)
            if count <= 4:
                return [step * i for i in range(count + 1)]
        power *= 10


def daily_bars(days: list[dict[str, Any]], *, width: int = 720, height: int = 200) -> Markup:
    """Questions per day as bars, the abstained share of each in amber; both axes labelled: counts on
    the left with grid lines, a date under every seventh day and the last, and the axes' titles."""
    if not days:
        return Markup('<p class="empty">No questions in this period yet.</p>')
    ticks = _ticks(max(d["questions"] for d in days))
    top = ticks[-1] or 1
    gap, left, bottom, head = 4, 40, 34, 10
    bar = max(2.0, (width - left - gap * len(days)) / len(days))
    plot = height - bottom - head
    base = height - bottom
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="questions per day over the last {len(days)} days, abstentions in amber">',
             f'<text x="0" y="{head - 2}" class="axis" text-anchor="start" dy="-1">questions</text>']
    for value in ticks:
        y = base - plot * value / top
        parts.append(f'<line x1="{left - 4}" y1="{y:.1f}" x2="{width}" y2="{y:.1f}" stroke="{MUTED if value == 0 else GRID}"/>'
                     f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" class="axis">{value}</text>')
    for i, day in enumerate(days):
        x = left + i * (bar + gap)
        total = plot * day["questions"] / top
        held = plot * day["abstained"] / top
        y = base - total
        title = escape(f'{day["day"]}: {day["questions"]} questions, {day["abstained"]} abstained')
        parts.append(f'<g><title>{title}</title>'
                     f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{total - held:.1f}" rx="2" fill="{ACCENT}"/>'
                     f'<rect x="{x:.1f}" y="{y + total - held:.1f}" width="{bar:.1f}" height="{held:.1f}" fill="{WARN}"/></g>')
    labelled = sorted({*range(0, len(days), 7), len(days) - 1})
    if len(labelled) > 1 and labelled[-1] - labelled[-2] < 4:  # the last day's label would overlap the one before
        labelled.pop(-2)
    for i in labelled:
        x = left + i * (bar + gap) + bar / 2
        parts.append(f'<text x="{x:.1f}" y="{base + 14}" text-anchor="middle" class="axis">{escape(str(days[i]["day"])[5:])}</text>')
    parts.append(f'<text x="{left + (width - left) / 2:.0f}" y="{height - 2}" text-anchor="middle" class="axis">day (month-day)</text>')
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

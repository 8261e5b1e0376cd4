"""The engine's read-only view of an ingested file: ``GET /source/<kb>/<path>?lines=a-b#La``.

A plain folder has no repository to link to, so ingest keeps a copy of each file it indexed under
``kb/<kb>/sources/`` and citations link here. Markdown is rendered (markdown-it-py, raw HTML and MDX tags
shown as text, then sanitised by nh3); everything else is highlighted by Pygments. Every line (or, in
rendered Markdown, every block) carries an ``L<n>`` anchor and the cited lines are marked. Only the copies
are served: a path that leaves the folder, a link, or a file that was never ingested is a 404. No sign-in:
the same visitors who read the answer read its sources.
"""

from __future__ import annotations

import asyncio
import html
import re
from pathlib import Path

from aiohttp import web

from engine.api.keys import ENGINE
from engine.config import KB_NAME

MARKDOWN_SUFFIXES = (".md", ".mdx", ".markdown")
MAX_BYTES = 2 * 1024 * 1024
_LINES = re.compile(r"^(\d{1,7})(?:-(\d{1,7}))?$")

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} · firstreply</title>
  <link rel="stylesheet" href="/static/app.css">
  <style>
    .source-file {{ max-width: 60rem; margin: 0 auto; padding: 1rem; }}
    .source-file pre.code {{ overflow-x: auto; font-size: .875rem; line-height: 1.45; background: #f8fafc;
      border: 1px solid #cbd5e1; border-radius: 6px; padding: .5rem 0; }}
    .source-file .line {{ display: block; padding: 0 .75rem 0 0; white-space: pre; }}
    .source-file .ln {{ display: inline-block; min-width: 3.5rem; padding-right: .75rem; text-align: right;
      color: #475569; text-decoration: none; user-select: none; }}
    .source-file .hl, .source-file .rendered .hl {{ background: #fef3c7; }}
    .source-file .rendered pre {{ overflow-x: auto; background: #f8fafc; padding: .75rem; }}
    {style}
  </style>
</head>
<body>
  <main class="source-file">
    <p class="muted"><a href="/ask">firstreply</a> · knowledge base <strong>{kb}</strong> · read-only copy</p>
    <h1>{title}</h1>
    {body}
  </main>
</body>
</html>
"""


def source_file(kb_root: Path, kb: str, rel_path: str) -> Path | None:
    """The ingested copy of ``rel_path`` in knowledge base ``kb``, or None when there is none to serve."""
    if not KB_NAME.match(kb) or "\x00" in rel_path or "\\" in rel_path:
        return None
    parts = rel_path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return None
    folder = (kb_root / kb / "sources").resolve()
    candidate = folder.joinpath(*parts)
    try:
        if candidate.is_symlink() or not candidate.is_file():
            return None
        if not candidate.resolve().is_relative_to(folder):
            return None
    except OSError:
        return None
    return candidate


def cited_lines(value: str | None) -> tuple[int, int] | None:
    found = _LINES.match(value or "")
    if not found:
        return None
    start = int(found.group(1))
    end = int(found.group(2) or start)
    return (start, end) if 1 <= start <= end else None


def render_code(name: str, text: str, lines: tuple[int, int] | None) -> tuple[str, str]:
    """(HTML, CSS): the file highlighted by Pygments, one anchored line per source line."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import TextLexer, get_lexer_for_filename
    from pygments.util import ClassNotFound

    try:
        lexer = get_lexer_for_filename(name, stripnl=False, ensurenl=False)
    except ClassNotFound:
        lexer = TextLexer(stripnl=False, ensurenl=False)
    formatter = HtmlFormatter(nowrap=True)  # spans are closed at each line end, so the output splits by line
    highlighted = highlight(text, lexer, formatter).split("\n")
    if highlighted and highlighted[-1] == "" and text.endswith("\n"):
        highlighted.pop()
    rows = []
    for number, line in enumerate(highlighted, start=1):
        marked = " hl" if lines and lines[0] <= number <= lines[1] else ""
        rows.append(f'<span class="line{marked}" id="L{number}"><a class="ln" href="#L{number}" '
                    f'aria-label="line {number}">{number}</a>{line}</span>')
    # types-Pygments leaves get_style_defs unannotated
    styles = HtmlFormatter().get_style_defs(".source-file .code")  # type: ignore[no-untyped-call]
    return f'<pre class="code">{"".join(rows)}</pre>', styles


def render_markdown(text: str, lines: tuple[int, int] | None) -> str:
    """The Markdown rendered and sanitised; each block anchored at its first line, the cited blocks marked."""
    import nh3
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")  # raw HTML and MDX tags stay text
    tokens = md.parse(text)
    seen: set[int] = set()
    for token in tokens:
        if token.map is None or token.nesting == -1:
            continue
        first, last = token.map[0] + 1, token.map[1]
        if first not in seen:
            seen.add(first)
            token.attrSet("id", f"L{first}")
        if lines and first <= lines[1] and last >= lines[0] and token.level == 0:
            token.attrJoin("class", "hl")
    rendered = md.renderer.render(tokens, md.options, {})
    return '<div class="rendered">' + nh3.clean(
        rendered, attributes={"*": {"id", "class"}, "a": {"href", "title"}, "img": {"src", "alt", "title"}},
        link_rel="noopener noreferrer nofollow") + "</div>"


def render_page(kb: str, rel_path: str, text: str, lines: tuple[int, int] | None) -> str:
    if rel_path.lower().endswith(MARKDOWN_SUFFIXES):
        body, style = render_markdown(text, lines), ""
    else:
        body, style = render_code(rel_path, text, lines)
    return PAGE.format(title=html.escape(rel_path), kb=html.escape(kb), body=body, style=style)


async def source_route(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    kb, rel_path = request.match_info["kb"], request.match_info["path"]
    found = source_file(engine.settings.kb_dir, kb, rel_path)
    if found is None or found.stat().st_size > MAX_BYTES:
        raise web.HTTPNotFound(text=f"No ingested file {rel_path} in knowledge base {kb}.")
    text = await asyncio.to_thread(found.read_text, encoding="utf-8", errors="replace")
    page = await asyncio.to_thread(render_page, kb, rel_path, text, cited_lines(request.query.get("lines")))
    return web.Response(text=page, content_type="text/html",
                        headers={"Content-Security-Policy": "default-src 'none'; style-src 'self' 'unsafe-inline'; "
                                                            "img-src 'self' https: data:"})


def mount_source_view(app: web.Application) -> None:
    app.router.add_get("/source/{kb}/{path:.+}", source_route)

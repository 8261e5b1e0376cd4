"""The public, read-only view of one golden record: ``GET /golden/<id>``.

Golden citations on the Ask page (and in Discord and GitHub answers) link here, so a visitor reads the
maintainers' answer without the sign-in the review page needs. It shows the question and the answer
(rendered and sanitised like an ingested Markdown file), nothing about who wrote it or the review.
"""

from __future__ import annotations

import html

from aiohttp import web

from engine.api.keys import ENGINE
from engine.api.source_view import render_markdown

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} · firstreply</title>
  <link rel="stylesheet" href="/static/app.css">
</head>
<body>
  <main class="golden-view" style="max-width: 48rem; margin: 0 auto; padding: 1rem;">
    <p class="muted"><a href="/ask">firstreply</a> · an answer the maintainers reviewed</p>
    <h1 class="question" style="white-space: pre-wrap">{question}</h1>
    <article class="card answer">{answer}</article>
  </main>
</body>
</html>
"""
MAX_ID = 2**63 - 1


async def golden_route(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    record_id = int(request.match_info["id"])
    record = await engine.review_service.golden_record(record_id) if record_id <= MAX_ID else None
    if record is None:
        raise web.HTTPNotFound(text=f"No golden record {record_id}.")
    question = record.question.strip()
    page = PAGE.format(title=html.escape(question[:80]), question=html.escape(question),
                       answer=render_markdown(record.answer, None))
    return web.Response(text=page, content_type="text/html",
                        headers={"Content-Security-Policy": "default-src 'none'; style-src 'self' 'unsafe-inline'; "
                                                            "img-src 'self' https: data:"})


def mount_golden_view(app: web.Application) -> None:
    app.router.add_get(r"/golden/{id:\d{1,19}}", golden_route)

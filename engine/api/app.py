"""The engine's web application, assembled: :func:`build_app` puts the middlewares, the routes and the
engine's own start and stop together.

The routes, by module: the answer protocol and FURY's route (:mod:`engine.api.answer_routes`); health,
readiness and metrics (:mod:`engine.api.health`); review and golden records under ``/api/v1``
(:mod:`engine.api.review_api`); fine-tuning and activations (:mod:`engine.api.tuning_api`); the Ask and
review pages (:mod:`engine.api.pages`); the public source and golden-record views
(:mod:`engine.api.source_view`, :mod:`engine.api.golden_view`); and ``GET /openapi.json``.

Who may call what (:mod:`engine.api.auth`): ``/healthz``, ``/readyz``, ``/openapi.json``, the source and
golden-record views, and a route a frontend opens with ``engine.web.open_route`` (the GitHub App's webhook) need
no credential; the pages use their own maintainer sign-in; every other route needs
an API key (or a maintainer's token) with a role: ``answer`` for ``/v1/…`` and FURY's ``/api/{provider}/generate``,
``review`` for the review routes under ``/api/v1``, ``admin`` for the rest of ``/api/v1`` (fine-tuning,
activations), and any valid credential for ``/metrics``. With no key configured, a client on this machine
(loopback, addressed by a local name, not through a proxy) has every role, and nobody else gets in.
What a failure becomes is :mod:`engine.api.errors`'s (one error shape, ``{"error": {"status", "code",
"message"}}``).

A composition root (:mod:`firstreply.serve`) may add its own routes to the application this returns, replace
:data:`~engine.api.keys.OPENAPI`, and start and stop its own parts with ``app.cleanup_ctx``: those run after
the engine has started and stop before it closes.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import TYPE_CHECKING, AsyncIterator

from aiohttp import web

from engine.api.answer_routes import mount_answer_routes
from engine.api.auth import known_keys
from engine.api.errors import dependency_down
from engine.api.golden_view import mount_golden_view
from engine.api.health import mount_health_routes
from engine.api.keys import ENGINE, GOLDEN_REPAIR, KEY_DIGESTS, LIMITS, METRICS, OPENAPI, TUNING_RUNNER, TUNING_TASK
from engine.api.middleware import MIDDLEWARES
from engine.api.openapi import document
from engine.api.pages import mount_pages
from engine.api.ratelimit import TokenBuckets
from engine.api.review_api import mount_review_api
from engine.api.source_view import mount_source_view
from engine.api.tuning_api import mount_tuning_api
from engine.protocol import MAX_QUESTION_CHARS

if TYPE_CHECKING:
    from engine.service import Engine

log = logging.getLogger(__name__)

MAX_REQUEST_LINE = 16 * 1024 + 12 * MAX_QUESTION_CHARS  # GET /v1/search?q=<8,000 characters, percent-encoded>&…


async def restore_golden_records(engine: Engine) -> None:
    try:
        added, removed = await engine.sync_golden()
    except Exception as error:
        if not dependency_down(error):
            log.exception("could not check the golden records in the index")
            return
        log.warning("could not check the golden records in the index: %s", (str(error) or type(error).__name__).splitlines()[0])
        return
    if added or removed:
        log.info("golden records brought back into the index: %d added, %d removed", added, removed)
    try:
        added, removed = await engine.sync_past_answers()
    except Exception as error:  # as above: the store may be down; the next import or review syncs them again
        log.warning("could not check the past answers in the index: %s", (str(error) or type(error).__name__).splitlines()[0])
        return
    if added or removed:
        log.info("past answers brought back into the index: %d added, %d removed", added, removed)


def build_app(engine: Engine) -> web.Application:
    """The engine's application: its routes and pages, started with the engine and stopped before it closes."""
    settings = engine.settings
    # A search's q may hold 8,000 characters, up to 12 bytes each once percent-encoded: the request line must fit
    # (aiohttp's default, 8,190 bytes, would refuse it with a bare text/plain 400).
    app = web.Application(middlewares=list(MIDDLEWARES), client_max_size=settings.web.max_body_bytes,
                          handler_args={"max_line_size": MAX_REQUEST_LINE})
    app[ENGINE] = engine
    app[METRICS] = engine.metrics
    app[LIMITS] = TokenBuckets(settings.web.rate_limit_per_minute)
    app[KEY_DIGESTS] = known_keys(settings)
    app[OPENAPI] = document(with_github=False)
    mount_answer_routes(app)
    mount_health_routes(app)
    mount_review_api(app)
    mount_tuning_api(app)
    mount_source_view(app)
    mount_golden_view(app)
    mount_pages(app, engine.session_secret, settings.web.cookie_secure)  # the key is known once the engine has started

    async def openapi_route(request: web.Request) -> web.Response:
        return web.json_response(request.app[OPENAPI])

    app.router.add_get("/openapi.json", openapi_route)
    app.cleanup_ctx.append(_engine_running)
    return app


async def _engine_running(app: web.Application) -> AsyncIterator[None]:
    """The engine started (the model loaded, golden records checked, the tuning runner running) while the app
    serves, and closed after; a cleanup context, so that what a composition root starts after it stops first.
    The routes rely on it: they use the engine's services (``engine.review_service``, ``engine.tuning_service``)
    without starting the engine themselves."""
    try:
        await _start(app)
        yield
    finally:
        await _stop(app)


async def _start(app: web.Application) -> None:
    engine = app[ENGINE]
    await engine.start()
    await asyncio.to_thread(engine.prepare_queries)  # questions can be encoded before the first one comes
    # torch, transformers and Chroma leave ~500,000 long-lived objects; a full collection that
    # walks them stalls every request for ~270 ms (measured on a 2-core machine). Freeze them.
    gc.collect()
    gc.freeze()
    # Golden records the index lacks (its store lost them, or a replacement) are indexed again, in the
    # background: a store that is down must not keep the replica from starting.
    app[GOLDEN_REPAIR] = asyncio.create_task(restore_golden_records(engine), name="golden-records")

    import aiohttp

    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))
    runner = engine.tuning_service.runner(session)  # tuning jobs move on in the background
    app[TUNING_RUNNER] = runner
    app[TUNING_TASK] = (asyncio.create_task(runner.run_forever(), name="tuning-runner"), session)


async def _stop(app: web.Application) -> None:
    if GOLDEN_REPAIR in app:
        app[GOLDEN_REPAIR].cancel()
        await asyncio.gather(app[GOLDEN_REPAIR], return_exceptions=True)
    if TUNING_TASK in app:
        task, session = app[TUNING_TASK]
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await session.close()
    await app[ENGINE].close()

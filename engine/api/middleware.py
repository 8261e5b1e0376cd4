"""The engine app's middlewares, in the order every request meets them (:data:`MIDDLEWARES`).

1. :func:`errors_middleware`: a request id, the one error shape for whatever a route raised (the verdict
   on an outage is :func:`engine.api.errors.dependency_down`'s), and the request metrics;
2. :func:`auth_middleware`: who is calling and whether they may (the policy is :mod:`engine.api.auth`'s),
   and the per-caller rate limit; the pages, open routes and public views pass through;
3. :func:`session_middleware`: the pages' signed session cookie and their HTML error pages.
"""

from __future__ import annotations

import logging
import time
import uuid

from aiohttp import web
from aiohttp.typedefs import Handler

from engine.api.auth import PUBLIC_PREFIXES, SAFE_METHODS, cross_site, identify, is_open, required_role
from engine.api.errors import NOT_READY, REQUEST_ID_FORMAT, dependency_down
from engine.api.http import BadRequest, UnsupportedMediaType, error_response
from engine.api.keys import CALLER, ENGINE, LIMITS, METRICS, REQUEST_ID, SESSION, SESSIONS
from engine.api.pages import _engine, is_page, render
from engine.logs import CORRELATION
from engine.store.repository import ConversationConflict

log = logging.getLogger("engine.api.errors")  # a failed request is logged under the same name as before


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    given = request.headers.get("X-Request-Id")
    request[REQUEST_ID] = given if given is not None and REQUEST_ID_FORMAT.fullmatch(given) else uuid.uuid4().hex
    CORRELATION.set(request[REQUEST_ID])
    if given is not None and given != request[REQUEST_ID]:  # the store keeps 64 characters; say so rather than lose the answer
        refusal = error_response(400, "X-Request-Id must be 1-64 letters, digits or -_.:/")
        refusal.headers["X-Request-Id"] = request[REQUEST_ID]
        return refusal
    started = time.perf_counter()
    route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
    response: web.StreamResponse
    try:
        response = await handler(request)
    except BadRequest as error:
        response = error_response(400, str(error))
    except UnsupportedMediaType as error:
        response = error_response(415, str(error))
    except ConversationConflict as error:
        response = error_response(409, str(error))
    except web.HTTPRequestEntityTooLarge:
        response = error_response(413, f"the body is larger than {request.app[ENGINE].settings.web.max_body_bytes} bytes")
    except web.HTTPException as error:
        if error.status < 400:
            raise
        # Headers that belong to the status stay with it (a 405's Allow, a 429's Retry-After).
        kept = {name: error.headers[name] for name in ("Allow", "Retry-After") if name in error.headers}
        response = error_response(error.status, error.reason, kept or None)
    except Exception as error:
        if dependency_down(error):  # the database or Chroma is down or restarting: the client may retry shortly
            log.error("request %s: engine not ready: %s", request[REQUEST_ID], (str(error) or type(error).__name__).splitlines()[0])
            response = error_response(503, NOT_READY)
        else:
            log.exception("request %s failed", request[REQUEST_ID])
            response = error_response(500, "something went wrong on our side")
    if not response.prepared:  # a streamed response sent its headers already
        response.headers["X-Request-Id"] = request[REQUEST_ID]
    metrics = request.app[METRICS]  # streamed answers count too, with the time to their last event
    metrics.requests.labels(route, str(response.status)).inc()
    metrics.latency.labels(route).observe(time.perf_counter() - started)
    return response


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    # the pages authenticate with their own sessions
    if is_open(request) or is_page(request.path) or request.path.startswith(PUBLIC_PREFIXES):
        return await handler(request)
    caller = await identify(request)
    if isinstance(caller, web.Response):
        return caller
    if caller.local and request.method not in SAFE_METHODS and cross_site(request):
        return error_response(403, "cross-site request refused: a web page may not change this engine's state")
    role = required_role(request.path)
    if role is not None and role not in caller.roles:
        return error_response(403, f"this key may not do that: it needs the '{role}' role "
                                   f"(it has: {', '.join(sorted(caller.roles)) or 'none'})")
    request[CALLER] = caller
    wait = request.app[LIMITS].take(caller.id)
    if wait is not None:
        return error_response(429, "too many requests for this key", {"Retry-After": str(max(1, round(wait)))})
    return await handler(request)


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not is_page(request.path) or request.path.startswith("/static/"):
        return await handler(request)
    sessions = request.app[SESSIONS]
    session = request[SESSION] = sessions.load(request)
    if session.token:  # signed in: still, on the server?
        session.maintainer = await _engine(request).review_service.session_maintainer(session.token)
        if session.maintainer is None:
            session.token = None
    try:
        response = await handler(request)
    except web.HTTPException as error:
        if error.status < 400:  # redirects keep the session too (e.g. after signing in)
            sessions.save(error, request[SESSION])
            raise
        if request.path.startswith("/ask/"):  # the Ask page's script reads JSON
            return web.json_response({"error": {"status": error.status, "message": error.text or error.reason}},
                                     status=error.status)
        response = render(request, "error.html", status=error.status, reason=error.reason,
                          message=error.text if error.text and error.text != f"{error.status}: {error.reason}" else None)
    if not response.prepared:
        sessions.save(response, request[SESSION])
    return response


MIDDLEWARES = (errors_middleware, auth_middleware, session_middleware)

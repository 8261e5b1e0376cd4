"""What a failed request becomes: one error shape, the right status, and a log line.

:func:`dependency_down` tells an outage (the database or the vector store unreachable or restarting:
503, try again shortly) from a fault (500); the middleware applies it to every route, and
:func:`stream_events` to answers that are already being streamed.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import AsyncIterator, Callable

from aiohttp import web
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from engine.api.http import (ENGINE, METRICS, REQUEST_ID, BadRequest, UnsupportedMediaType, error_response,
                             send_event, sse_response)
from engine.index.embedder import EmbeddingModelError
from engine.index.vectors import VectorStoreError
from engine.logs import CORRELATION
from engine.store.database import DatabaseError
from engine.store.repository import ConversationConflict

log = logging.getLogger(__name__)
REQUEST_ID_FORMAT = re.compile(r"[A-Za-z0-9_.:/-]{1,64}")  # what the answer log's request_id column holds

NOT_READY = "the engine is not ready; try again shortly"

# asyncpg's names for "the server is not there right now" (restarting, shutting down, gone).
UNAVAILABLE = {"CannotConnectNowError", "ConnectionDoesNotExistError", "ConnectionFailureError", "AdminShutdownError",
               "CrashShutdownError", "TooManyConnectionsError"}


def dependency_down(error: BaseException) -> bool:
    """Whether an error means a dependency is unreachable (503), not that something is wrong (500): the same
    verdict for an answer, streamed or not, as ``/readyz`` gives for the same outage."""
    if isinstance(error, (DatabaseError, VectorStoreError, EmbeddingModelError, ConnectionError, OperationalError,
                          InterfaceError)):
        return True
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return True
        cause = error.orig
        state = str(getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None) or "")
        if state.startswith("08") or state in {"57P01", "57P02", "57P03", "53300"}:  # connection, shutdown, too many
            return True
        if state == "55000" and error.statement is None:  # refused while connecting: "not currently accepting connections"
            return True
        return any(type(e).__name__ in UNAVAILABLE for e in (cause, getattr(cause, "__cause__", None)) if e is not None)
    return type(error).__name__ in UNAVAILABLE


@web.middleware
async def errors_middleware(request: web.Request, handler):
    given = request.headers.get("X-Request-Id")
    request[REQUEST_ID] = given if given is not None and REQUEST_ID_FORMAT.fullmatch(given) else uuid.uuid4().hex
    CORRELATION.set(request[REQUEST_ID])
    if given is not None and given != request[REQUEST_ID]:  # the store keeps 64 characters; say so rather than lose the answer
        response = error_response(400, "X-Request-Id must be 1-64 letters, digits or -_.:/")
        response.headers["X-Request-Id"] = request[REQUEST_ID]
        return response
    started = time.perf_counter()
    route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
    try:
        response = await handler(request)
    except BadRequest as error:
        response = error_response(400, str(error))
    except UnsupportedMediaType as error:
        response = error_response(415, str(error))
    except ConversationConflict as error:
        response = error_response(409, str(error))
    except web.HTTPRequestEntityTooLarge:
        response = error_response(413, f"the body is larger than {request.app[ENGINE].settings.max_body_bytes} bytes")
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


async def stream_events(request: web.Request, events: AsyncIterator[dict],
                        render: Callable[[dict], tuple[str, dict]]) -> web.StreamResponse:
    """Serve an answer's events as server-sent events, each as ``render`` names and shapes it.

    The first event is awaited before the response starts, so what fails while the answer is prepared
    (a conversation of another channel, the engine not ready) is the request's own status; a failure
    after that ends the stream with an ``error`` event.
    """
    iterator = events.__aiter__()
    first = await anext(iterator, None)
    response = await sse_response(request)
    try:
        event = first
        while event is not None:
            await send_event(response, *render(event))
            event = await anext(iterator, None)
    except ConnectionResetError:  # the client went away; the answer was still logged
        log.info("request %s: client disconnected during the stream", request[REQUEST_ID])
        return response
    except Exception as error:
        if dependency_down(error):
            log.error("request %s: engine not ready: %s", request[REQUEST_ID], (str(error) or type(error).__name__).splitlines()[0])
            await send_event(response, "error", {"status": 503, "code": "unavailable", "message": NOT_READY})
        else:
            log.exception("request %s: streaming failed", request[REQUEST_ID])
            await send_event(response, "error", {"status": 500, "code": "internal", "message": "something went wrong on our side"})
    await response.write_eof()
    return response

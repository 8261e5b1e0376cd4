"""What a failed request becomes: one error shape, the right status, and a log line.

:func:`dependency_down` tells an outage (the database or the vector store unreachable or restarting:
503, try again shortly) from a fault (500); :func:`engine.api.middleware.errors_middleware` applies it to
every route, and :func:`stream_events` to answers that are already being streamed.
"""

from __future__ import annotations

import logging
import re
from typing import Any, AsyncIterator, Callable

from aiohttp import web
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from engine.api.http import send_event, sse_response
from engine.api.keys import REQUEST_ID
from engine.index.embedder import EmbeddingModelError
from engine.index.vectors import VectorStoreError
from engine.store.database import DatabaseError

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


async def stream_events(request: web.Request, events: AsyncIterator[dict[str, Any]],
                        render: Callable[[dict[str, Any]], tuple[str, dict[str, Any]]]) -> web.StreamResponse:
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

"""HTTP plumbing every route module shares: the one error shape, reading JSON bodies and query
parameters, and server-sent events (the app's keys are :mod:`engine.api.keys`')."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from aiohttp import web

from engine.api.keys import ENGINE, REQUEST_ID
from engine.store.text import text_problem

ERROR_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
               409: "conflict", 413: "too_large", 415: "unsupported_media_type", 429: "rate_limited", 500: "internal", 503: "unavailable"}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {"error": {"status": status, "code": ERROR_CODES.get(status, "error"), "message": message}}
    return web.json_response(body, status=status, headers=headers)


#: Headers a reverse proxy adds to say who the client really is; anyone else may send them too.
PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-IP")


def _address(value: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address((value or "").strip().strip("[]"))
    except ValueError:
        return None


def from_trusted_proxy(request: web.Request) -> bool:
    """Whether the peer is one of ``FIRSTREPLY_TRUSTED_PROXIES``, so its X-Forwarded-* headers may be believed."""
    peer = _address(request.remote)
    networks = request.app[ENGINE].settings.web.trusted_proxies
    return peer is not None and any(peer in network for network in networks)


def proxied(request: web.Request) -> bool:
    """Whether the request carries any header a proxy adds."""
    return any(name in request.headers for name in PROXY_HEADERS)


def client_address(request: web.Request) -> str | None:
    """Who sent the request: the peer, or, from a trusted proxy, the nearest address in X-Forwarded-For
    that is not itself a trusted proxy (a client can put anything at the left of that list)."""
    if not from_trusted_proxy(request):
        return request.remote
    networks = request.app[ENGINE].settings.web.trusted_proxies
    chain = [part.strip() for part in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",") if part.strip()]
    for hop in reversed(chain):
        address = _address(hop)
        if address is None:
            return None  # a forged or mangled entry: nobody we can name
        if not any(address in network for network in networks):
            return str(address)
    return request.remote


def request_host(request: web.Request) -> str:
    """The host the client addressed: ``Host``, or X-Forwarded-Host when a trusted proxy sent it."""
    if from_trusted_proxy(request) and (forwarded := request.headers.get("X-Forwarded-Host")):
        return forwarded.split(",")[0].strip()
    return request.host


class BadRequest(Exception):
    pass


class UnsupportedMediaType(Exception):
    """A body sent as another type than the route reads (415)."""


def require_content_type(request: web.Request, *kinds: str) -> None:
    """A 415 unless the body is one of ``kinds``: an HTML form on another site can send text/plain,
    urlencoded or multipart bodies without asking, but never application/json."""
    if request.content_type not in kinds:
        raise UnsupportedMediaType(f"send the body as {' or '.join(kinds)} (Content-Type), not {request.content_type!r}")


async def read_body(request: web.Request, limit: int | None = None, *kinds: str) -> bytes:
    """The raw body, refusing (413) more than ``limit`` bytes (``FIRSTREPLY_MAX_BODY_BYTES`` when None) before
    reading any when the request says its length, and as soon as the count passes it when it doesn't; with
    ``kinds``, a 415 (:func:`require_content_type`) unless the body is one of them. The one size check of every
    route that takes a body: the app's ``client_max_size`` is the engine's limit, and a route may allow more."""
    if limit is None:
        limit = request.app[ENGINE].settings.web.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    if kinds:
        require_content_type(request, *kinds)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=size)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: web.Request) -> dict[str, Any]:
    body = await read_body(request, None, "application/json")
    try:
        data = json.loads(body.decode(request.charset or "utf-8"))
    except ValueError:  # not JSON, not UTF-8, or an integer of more digits than Python converts
        raise BadRequest("the body is not valid JSON") from None
    except RecursionError:  # nesting deep enough to exhaust the parser's stack
        raise BadRequest("the body is nested too deeply") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data


MAX_ROW_ID = 2**31 - 1  # the largest id an INTEGER column holds (PostgreSQL's int4)
MAX_PAGE = 10_000


def row_id(value: str) -> int | None:
    """A table row's id from a path segment; None when the text can't be one (so: there is no such row)."""
    if not (value.isascii() and value.isdigit()) or len(value) > 10:  # "²".isdigit(), but int("²") fails
        return None
    number = int(value)
    return number if 0 < number <= MAX_ROW_ID else None


def page_number(value: str | None) -> int:
    """A list's page from a query string, clamped to 1..MAX_PAGE; anything else is the first page."""
    try:
        return max(1, min(MAX_PAGE, int(value or "1"))) if value is None or len(value) <= 8 else MAX_PAGE
    except ValueError:
        return 1


def int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high], or a 400 naming it."""
    try:
        value = int(request.query.get(name, str(default)))
    except ValueError:
        raise BadRequest(f"'{name}' must be an integer") from None
    if not low <= value <= high:
        raise BadRequest(f"'{name}' must be between {low} and {high}")
    return value


def text_field(data: dict[str, Any], field: str, *, required: bool = False, limit: int = 500) -> str | None:
    value = data.get(field)
    if value is None:
        if required:
            raise BadRequest(f"'{field}' is required")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise BadRequest(f"'{field}' must be a non-empty string" if required else f"'{field}' must be a string")
    if len(value) > limit:
        raise BadRequest(f"'{field}' is longer than {limit} characters")
    return checked_text(field, value)


def checked_text(field: str, value: str) -> str:
    """``value``, or a 400 naming ``field`` when it can't be encoded or stored (see ``text_problem``)."""
    problem = text_problem(value)
    if problem:
        raise BadRequest(f"'{field}' {problem}")
    return value


async def sse_response(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                           "X-Request-Id": request[REQUEST_ID]})
    await response.prepare(request)
    return response


async def send_event(response: web.StreamResponse, event: str, data: dict[str, Any]) -> None:
    await response.write(f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode())

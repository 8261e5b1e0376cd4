"""Who is calling the API, what they may do, and whether a browser sent the request from another site.

Credentials, in the order they are tried:

- an API key from ``FIRSTREPLY_API_KEYS``, with the roles configured for it (``answer`` by
  default; ``review`` and ``admin`` only when given) and a name, which is then the actor;
- a maintainer's sign-in token, which may review and administer, as that maintainer;
- nothing at all, from a loopback address, when no key is configured (the single-machine
  default): every role, as ``local``. Only for a request addressed to this machine by name
  (``Host`` is ``localhost``, a loopback address or ``FIRSTREPLY_PUBLIC_URL``'s host), so a
  web page whose name an attacker points at 127.0.0.1 (DNS rebinding) is refused; and not for
  one that came through a proxy (X-Forwarded-For and the like from a peer that is not a trusted
  proxy): the real client is elsewhere.

The actor recorded for a change always comes from the credential, never from the body (only a
keyless local caller may name itself with ``by``). Each route needs one role (:data:`ROUTE_ROLES`);
a route not listed there needs ``admin``. The engine's open routes (:data:`OPEN_ROUTES`: health, readiness, the
OpenAPI document) need none, nor do the routes a frontend opens with :func:`open_route` because they authenticate
by their own means (the GitHub App's webhook, by its signature).

The keyless local mode is reachable by any web page the user has open, so a state change
from it must not come from another site: ``Origin``/``Sec-Fetch-Site`` are checked, and JSON
routes accept only ``application/json`` bodies, which a cross-site form cannot send.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from engine.api.http import client_address, error_response, from_trusted_proxy, proxied, request_host
from engine.api.keys import CALLER, ENGINE, KEY_DIGESTS, OPEN_PATHS
from engine.api.sessions import same_origin
from engine.config import ROLES, Settings

#: The engine's routes that need no credential; a frontend adds its own with :func:`open_route`.
OPEN_ROUTES = frozenset({"/healthz", "/readyz", "/openapi.json"})
# Read-only public views that citations link to: an ingested file, a golden record.
PUBLIC_PREFIXES = ("/source/", "/golden/")
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

def open_route(app: web.Application, path: str) -> None:
    """Let requests for ``path`` through without a credential: a frontend's route that authenticates by its own
    means (a webhook's signature). Call it while mounting the route, before the app starts."""
    app.setdefault(OPEN_PATHS, set(OPEN_ROUTES)).add(path)


def is_open(request: web.Request) -> bool:
    """Whether the request's path needs no credential (:data:`OPEN_ROUTES` and the paths :func:`open_route` added)."""
    return request.path in request.app.get(OPEN_PATHS, OPEN_ROUTES)


#: The role each route needs: the first prefix that matches decides; a route not listed needs ``admin``.
ROUTE_ROLES: tuple[tuple[str, str | None], ...] = (
    ("/v1/", "answer"),
    ("/api/v1/answers", "review"),
    ("/api/v1/golden-records", "review"),
    ("/api/v1/overview", "review"),
    ("/api/v1/history", "review"),
    ("/api/v1/github/replies", "review"),
    ("/api/v1/github/jobs", "review"),
    ("/api/v1/", "admin"),  # fine-tuning, activations, switching the GitHub App per repository
    ("/api/", "answer"),  # FURY's /api/{provider}/generate
    ("/metrics", None),  # any valid credential
)


@dataclass(frozen=True)
class Caller:
    id: str  # rate limits are per caller
    actor: str  # recorded as who did it
    roles: frozenset[str]
    local: bool = False  # keyless, on this machine


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


@dataclass(frozen=True)
class KnownKey:
    digest: bytes
    name: str
    roles: frozenset[str]


def known_keys(settings: Settings) -> list[KnownKey]:
    keys = []
    for entry in settings.web.api_keys:
        value = entry.key.get_secret_value()
        keys.append(KnownKey(digest(value), entry.name or f"key-{digest(value).hex()[:8]}", frozenset(entry.roles)))
    return keys


def required_role(path: str) -> str | None:
    for prefix, role in ROUTE_ROLES:
        if path.startswith(prefix):
            return role
    return "admin"


def is_loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


def local_host(host: str, public_host: str | None = None) -> bool:
    """Whether ``host`` (a Host header, with or without port) names this machine: ``localhost`` (or a
    name under ``.localhost``, which resolves nowhere else), a loopback address, or the configured public host."""
    name = urlsplit("//" + host).hostname if host else None
    if not name:
        return False
    if name == "localhost" or name.endswith(".localhost") or (public_host is not None and name == public_host.lower()):
        return True
    return is_loopback(name)


def _origin_host(request: web.Request) -> str | None:
    claimed = request.headers.get("Origin")
    if not claimed or claimed == "null":
        return None
    return urlsplit(claimed).netloc


def keyless_refusal(request: web.Request) -> web.Response | None:
    """Why a keyless request from a loopback peer is still refused (None: it is served)."""
    if proxied(request) and not from_trusted_proxy(request):
        return error_response(403, "this request came through a proxy (X-Forwarded-For or the like): with no API keys "
                                   "only clients on this machine are served (set FIRSTREPLY_API_KEYS, or "
                                   "FIRSTREPLY_TRUSTED_PROXIES for a proxy of yours)")
    public = request.app[ENGINE].settings.web.public_url
    public_host = public.host if public is not None else None
    origin = _origin_host(request)
    if not local_host(request_host(request), public_host) or (origin is not None and not local_host(origin, public_host)):
        return error_response(403, "with no API keys only requests addressed to localhost are served "
                                   "(Host and Origin must name this machine)")
    return None


def cross_site(request: web.Request) -> bool:
    """Whether a browser says this request was made by a page of another site."""
    fetch_site = request.headers.get("Sec-Fetch-Site", "").lower()
    return fetch_site in {"cross-site", "same-site"} or not same_origin(request)


async def identify(request: web.Request) -> Caller | web.Response:
    """The caller, or the 401 to send instead."""
    keys: list[KnownKey] = request.app[KEY_DIGESTS]
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else ""
    if token:
        given = digest(token)
        for key in keys:
            if hmac.compare_digest(given, key.digest):
                return Caller(f"key:{key.name}", f"api:{key.name}", key.roles)
        name = await request.app[ENGINE].review_service.maintainer_for(token)
        if name:
            return Caller(f"maintainer:{name}", name, frozenset({"review", "admin"}))
        return error_response(401, "unknown API key")
    if not keys and is_loopback(client_address(request)):
        refused = keyless_refusal(request)
        return refused or Caller("local", "local", frozenset(ROLES), local=True)
    if keys:
        return error_response(401, "send an API key as 'Authorization: Bearer <key>'")
    return error_response(401, "no API keys are configured (FIRSTREPLY_API_KEYS); only local clients are served")


def actor(request: web.Request, data: dict[str, Any] | None = None) -> str:
    """Who is acting: the credential's name; only a keyless local caller may name itself with ``by``."""
    caller: Caller | None = request.get(CALLER)
    if caller is None:
        return "api"
    by = (data or {}).get("by")
    if caller.local and isinstance(by, str) and by.strip():
        return by.strip()[:100]
    return caller.actor

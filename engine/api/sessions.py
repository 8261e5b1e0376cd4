"""Browser sessions for the web pages: a signed cookie, a CSRF token, and the same-origin check.

The cookie holds a random visitor id (votes and conversations on the Ask page), the CSRF token
every form and script must send back, and, once a maintainer signs in, a session token whose
hash the database keeps (``maintainer_sessions``): who it belongs to is looked up on every
request, so signing out or removing the maintainer ends the session everywhere. The cookie is
signed with itsdangerous (tampering voids it), HttpOnly, SameSite=Lax, and Secure when configured.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlsplit

from aiohttp import web
from itsdangerous import BadSignature, URLSafeTimedSerializer

from engine.api.http import request_host

COOKIE = "firstreply_session"
MAX_AGE_SECONDS = 7 * 24 * 3600


@dataclass
class WebSession:
    token: str | None = None  # a maintainer's session token (None: nobody signed in)
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    visitor: str = field(default_factory=lambda: secrets.token_hex(8))
    maintainer: str | None = None  # whose the token is, looked up in the database on each request


class CsrfRefused(web.HTTPForbidden):
    pass


class Sessions:
    """``secret`` may be a function: the engine's key is only known once it has started (it is shared
    by every replica through the database), after the routes are mounted."""

    def __init__(self, secret: str | Callable[[], str], *, secure: bool = False) -> None:
        self._secret = secret
        self._signer: URLSafeTimedSerializer | None = None
        self.secure = secure

    @property
    def _serializer(self) -> URLSafeTimedSerializer:
        if self._signer is None:
            secret = self._secret() if callable(self._secret) else self._secret
            self._signer = URLSafeTimedSerializer(secret, salt="firstreply.session")
        return self._signer

    def load(self, request: web.Request) -> WebSession:
        value = request.cookies.get(COOKIE)
        if value:
            try:
                data = self._serializer.loads(value, max_age=MAX_AGE_SECONDS)
                token, csrf, visitor = data.get("s"), data["c"], data["v"]
                if all(isinstance(v, str) for v in (csrf, visitor)) and (token is None or isinstance(token, str)):
                    return WebSession(token, csrf, visitor)
            except (BadSignature, KeyError, TypeError, UnicodeError):
                pass  # expired or forged: start afresh
        return WebSession()

    def save(self, response: web.StreamResponse, session: WebSession) -> None:
        value = self._serializer.dumps({"s": session.token, "c": session.csrf, "v": session.visitor})
        response.set_cookie(COOKIE, value, max_age=MAX_AGE_SECONDS, httponly=True, samesite="Lax", secure=self.secure,
                            path="/")


def same_origin(request: web.Request) -> bool:
    """False when the browser says the request came from another site (Origin, else Referer)."""
    claimed = request.headers.get("Origin") or request.headers.get("Referer")
    if not claimed or claimed == "null":
        return claimed is None
    origin = urlsplit(claimed)
    return origin.netloc == request_host(request)  # X-Forwarded-Host only counts from a trusted proxy


def check_csrf(request: web.Request, session: WebSession, supplied: str | None) -> None:
    """Refuse (403) a state-changing request from another site, or without this session's token."""
    if not same_origin(request):
        raise CsrfRefused(text="cross-site request refused")
    if not supplied or not hmac.compare_digest(supplied.encode("utf-8", "surrogatepass"), session.csrf.encode()):
        raise CsrfRefused(text="missing or wrong CSRF token: reload the page and try again")

"""Talking to GitHub as the App: installation tokens, GraphQL calls, and which failures are worth a retry.

gidgethub does the HTTP (its aiohttp client, pointed at ``api_url`` for REST and
``graphql_url`` for GraphQL). This module adds the two things the App needs on top: a cache
of installation tokens, and a verdict on every failure: :class:`TransientError` (5xx, rate
limits, network trouble: try again later, after ``retry_after`` when GitHub said so, and at least
a minute after a secondary rate limit that names no wait) or
:class:`PermanentError` (a 4xx or a refused query: retrying won't help; the job records why).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

import aiohttp
import gidgethub
import gidgethub.aiohttp
from gidgethub.apps import get_installation_access_token, get_jwt

from github_app.config import AppConfig

log = logging.getLogger(__name__)
TOKEN_MARGIN_SECONDS = 300  # renew an installation token this long before it expires


class TransientError(Exception):
    """Worth another try later: after ``retry_after`` when GitHub said so; ``secondary`` marks a secondary
    rate limit without a wait given (the worker then waits at least a minute, doubling each time)."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None,
                 secondary: bool = False) -> None:
        super().__init__(message)
        self.status, self.retry_after, self.secondary = status, retry_after, secondary


class PermanentError(Exception):
    pass


class NotFound(PermanentError):
    """GraphQL answered ``NOT_FOUND`` for every error: the discussion or comment was deleted. Nothing to do:
    the job is skipped, not failed."""


def retry_after(headers, now: float | None = None) -> float | None:
    """Seconds GitHub asked us to wait: ``Retry-After``, or until ``X-RateLimit-Reset`` when none remain."""
    value = headers.get("retry-after")
    if value is not None:
        try:
            return max(0.0, float(value))
        except ValueError:
            return None
    if headers.get("x-ratelimit-remaining") == "0" and headers.get("x-ratelimit-reset", "").isdigit():
        return max(0.0, int(headers["x-ratelimit-reset"]) - (now if now is not None else time.time()))
    return None


def is_rate_limited(status: int, headers) -> bool:
    return status == 429 or (status == 403 and (headers.get("retry-after") is not None
                                                or headers.get("x-ratelimit-remaining") == "0"))


_SECONDARY = re.compile(rb"secondary rate limit|abuse detection", re.IGNORECASE)


def is_secondary_limit(status: int, headers, body: bytes) -> bool:
    """A secondary rate limit that names no wait: 429, or 403 saying so, without ``Retry-After`` and with
    requests left in the primary limit. GitHub's guidance: wait at least a minute, then back off exponentially."""
    if status not in (403, 429) or headers.get("retry-after") is not None or headers.get("x-ratelimit-remaining") == "0":
        return False
    return status == 429 or bool(_SECONDARY.search(body or b""))


def _message(body: bytes) -> str:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ""
    return str(data.get("message", ""))[:200] if isinstance(data, dict) else ""


class GitHubAPI(gidgethub.aiohttp.GitHubAPI):
    """gidgethub's aiohttp client, turning server errors, rate limits and network trouble into :class:`TransientError`."""

    async def _request(self, method, url, headers, body=b""):
        try:
            status, response_headers, data = await super()._request(method, url, headers, body)
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            raise TransientError(f"{method} {url}: {type(error).__name__}: {error}") from None
        if is_secondary_limit(status, response_headers, data):
            raise TransientError(f"{method} {url}: HTTP {status}: secondary rate limit: {_message(data)}", status=status,
                                 secondary=True)
        if status >= 500 or is_rate_limited(status, response_headers):
            raise TransientError(f"{method} {url}: HTTP {status}", status=status, retry_after=retry_after(response_headers))
        return status, response_headers, data


@dataclass
class _Token:
    value: str
    expires_at: float  # epoch seconds


class GitHubClient:
    """The App's view of GitHub: one aiohttp session, cached installation tokens, GraphQL with variables."""

    def __init__(self, config: AppConfig, session: aiohttp.ClientSession) -> None:
        self.config = config
        self.session = session
        self.requester = f"{config.slug}/firstreply"
        self._tokens: dict[int, _Token] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self.exchanges = 0  # token exchanges made (the cache keeps this low)

    async def installation_token(self, installation_id: int) -> str:
        cached = self._tokens.get(installation_id)
        if cached and cached.expires_at - TOKEN_MARGIN_SECONDS > time.time():
            return cached.value
        async with self._locks.setdefault(installation_id, asyncio.Lock()):
            cached = self._tokens.get(installation_id)
            if cached and cached.expires_at - TOKEN_MARGIN_SECONDS > time.time():
                return cached.value
            gh = GitHubAPI(self.session, self.requester, base_url=self.config.api_url)
            try:
                data = await get_installation_access_token(gh, installation_id=str(installation_id),
                                                           app_id=str(self.config.app_id), private_key=self.config.private_key)
            except gidgethub.BadRequest as error:
                if is_rate_limited(int(error.status_code), error.headers):
                    raise TransientError("token exchange rate-limited", status=int(error.status_code),
                                         retry_after=retry_after(error.headers)) from None
                raise PermanentError(f"installation {installation_id}: token exchange refused: "
                                     f"HTTP {int(error.status_code)} {error}") from None
            self.exchanges += 1
            expires = datetime.fromisoformat(data["expires_at"].replace("Z", "+00:00")).timestamp()
            self._tokens[installation_id] = _Token(data["token"], expires)
            return data["token"]

    async def _as_app(self, path: str) -> dict | None:
        """GET a REST resource as the App itself (an RS256 JWT); None when GitHub answers 404."""
        gh = GitHubAPI(self.session, self.requester, base_url=self.config.api_url)
        token = get_jwt(app_id=str(self.config.app_id), private_key=self.config.private_key)
        try:
            return await gh.getitem(path, jwt=token)
        except gidgethub.BadRequest as error:
            if int(error.status_code) == 404:
                return None
            raise PermanentError(f"GET {path}: HTTP {int(error.status_code)} {error}") from None

    async def app_installation(self, installation_id: int) -> dict | None:
        """The installation as GitHub knows it (``GET /app/installations/{id}``), or None if there is none."""
        return await self._as_app(f"/app/installations/{int(installation_id)}")

    async def repository_installation(self, full_name: str) -> dict | None:
        """The App's installation on a repository (``GET /repos/{owner}/{repo}/installation``), or None."""
        owner, _, name = full_name.partition("/")
        if not owner or not name:
            return None
        return await self._as_app(f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}/installation")

    def forget_token(self, installation_id: int) -> None:
        self._tokens.pop(installation_id, None)

    async def graphql(self, installation_id: int, query: str, **variables) -> dict:
        token = await self.installation_token(installation_id)
        gh = GitHubAPI(self.session, self.requester, oauth_token=token, base_url=self.config.api_url)
        return await graphql(gh, self.config.graphql_url, query, variables,
                             on_refused=lambda: self.forget_token(installation_id))


async def graphql(gh: GitHubAPI, endpoint: str, query: str, variables: dict, *, on_refused=None) -> dict:
    """One GraphQL call, its failures sorted: :class:`TransientError` (rate limits, a refused installation token,
    an unusable answer), :class:`NotFound`, or :class:`PermanentError`. ``on_refused`` runs when the token is
    refused (an installation token revoked or expired early: the next try gets a fresh one); without it, a refused
    token is permanent (a personal token won't start working by itself)."""
    try:
        return await gh.graphql(query, endpoint=endpoint, **variables)
    except gidgethub.GraphQLAuthorizationFailure:
        if on_refused is None:
            raise PermanentError("GraphQL: the token was refused (check FIRSTREPLY_GITHUB_TOKEN)") from None
        on_refused()
        raise TransientError("GraphQL: the installation token was refused", status=401) from None
    except gidgethub.QueryError as error:
        errors = error.response.get("errors") or []
        if any(e.get("type") == "RATE_LIMITED" for e in errors if isinstance(e, dict)):
            raise TransientError("GraphQL: rate limited") from None
        messages = "; ".join(str(e.get("message", e)) for e in errors if isinstance(e, dict)) or str(error)
        if errors and all(isinstance(e, dict) and e.get("type") == "NOT_FOUND" for e in errors):
            raise NotFound(messages) from None
        raise PermanentError(f"GraphQL: {messages}") from None
    except gidgethub.BadGraphQLRequest as error:
        raise PermanentError(f"GraphQL: HTTP {int(error.status_code)}: {error.response}") from None
    except gidgethub.GraphQLException as error:
        raise TransientError(f"GraphQL: unusable response: {error}") from None

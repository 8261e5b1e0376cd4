"""The kit for frontends that extend the engine's web app: mount routes on its aiohttp application, and add their
part to the review pages.

Routes: :func:`read_body` reads a raw body within a size limit (a 413 past it), :func:`read_json` a JSON body
(raising :class:`BadRequest`, which the engine's middleware turns into a 400), :func:`int_query` a bounded integer query parameter, :func:`error_response` writes the one error shape,
and :func:`actor` says who is acting (the API key's name). Routes under ``/api/v1/`` sit behind the engine's keys;
:func:`open_route` lets one through without a key, for a route that authenticates by its own means (a webhook).

Review pages: a frontend that keeps something a reviewer acts on beside an answer (the GitHub App's drafts) gives
the engine a :class:`ReviewExtension` with ``engine.register_review_extension(extension)``; the answer page, the
answer's JSON and the overview then show its part under the extension's ``name``, and the answer page's "post"
action calls :meth:`ReviewExtension.post_draft`. With no extension registered the pages show no such part.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from engine.api.auth import actor, open_route
from engine.api.http import BadRequest, error_response, int_query, read_body, read_json

__all__ = ["BadRequest", "DraftConflict", "ReviewExtension", "actor", "error_response", "int_query", "open_route", "read_body", "read_json"]


class DraftConflict(Exception):
    """The draft exists but can't be posted now (already approved, maybe just now by someone else, or posted);
    the message says which, and the page shows it."""


@runtime_checkable
class ReviewExtension(Protocol):
    """A frontend's part of the review pages. Called only after the engine has started."""

    #: The key its parts take: ``detail[name]`` on an answer page and in an answer's JSON, ``overview[name]``.
    name: str

    async def detail(self, answer_id: str) -> Any | None:
        """What the answer page shows about this answer (an object with attributes), or None."""

    def summary(self, part: Any) -> dict[str, Any]:
        """What an answer's JSON (``GET /api/v1/answers/{id}``) shows of ``detail``'s result."""

    async def overview(self, since: datetime) -> dict[str, Any]:
        """The overview's figures since ``since``."""

    async def post_draft(self, answer_id: str, by: str, body: str | None = None) -> dict[str, Any] | None:
        """Approve the draft made for this answer (``body``: a maintainer's corrected text) and have it posted;
        returns the audit record's detail (e.g. ``{"reply": 12}``), None when no draft was made for this answer,
        or raises :class:`DraftConflict` when the draft is no longer waiting."""

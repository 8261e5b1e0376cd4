"""Reading a repository's answered Discussions, for ``firstreply history import github OWNER/REPO``.

:func:`answered_thread` is the protocol decision, pure: a discussion as GraphQL returns it becomes one
:class:`PastDiscussion` (the question and its accepted answer, or the maintainers' replies when none is marked),
or the reason it is skipped (unanswered, or its author asked not to be used). :class:`DiscussionHistory` is the
I/O edge: pages of discussions through gidgethub, least recently updated first, each with the cursor after it,
waiting when GitHub's rate limit runs low or is hit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import AsyncIterator, Awaitable, Callable

from engine.protocol import AnsweredThread
from github_app.api import GitHubAPI, PermanentError, TransientError, graphql
from github_app.graphql import DISCUSSION_HISTORY

log = logging.getLogger(__name__)

#: Who speaks for the project when no answer is marked: GitHub's author associations of its people.
MAINTAINERS = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})
PAGE_SIZE = 50
RESERVE = 100  # points of GraphQL rate limit left for everything else (the App answering) before waiting


PastDiscussion = AnsweredThread  # what the engine's history store takes, defined once in engine.protocol


def _login(node: dict | None) -> str | None:
    author = (node or {}).get("author") or {}
    return author.get("login")


def answered_thread(discussion: dict, opt_out: str) -> PastDiscussion | str:
    """The discussion as a past answer, or why it is skipped: ``"opted out"`` (the marker is in the question or
    in a comment of its author) or ``"unanswered"`` (no accepted answer, and no maintainer replied)."""
    author = _login(discussion)
    comments = list(((discussion.get("comments") or {}).get("nodes")) or [])
    everything = [c for comment in comments for c in [comment, *(((comment.get("replies") or {}).get("nodes")) or [])]]
    marker = opt_out.casefold()
    if marker in (discussion.get("body") or "").casefold() or marker in (discussion.get("title") or "").casefold() or any(
            marker in (c.get("body") or "").casefold() for c in everything if author and _login(c) == author):
        return "opted out"
    answer = discussion.get("answer")
    kind, answerer = "accepted", _login(answer)
    if answer and (answer.get("body") or "").strip():
        text = answer["body"].strip()
    else:
        replies = [c for c in everything if c.get("authorAssociation") in MAINTAINERS and _login(c) != author
                   and ((c.get("author") or {}).get("__typename") != "Bot") and (c.get("body") or "").strip()]
        if not replies:
            return "unanswered"
        kind, answerer = "maintainers", _login(replies[0])
        text = "\n\n".join(c["body"].strip() for c in replies)
    return PastDiscussion(thread_id=discussion["id"], url=discussion["url"], title=discussion.get("title") or "",
                          question=(discussion.get("body") or "").strip(), answer=text, answer_kind=kind,
                          updated_at=discussion.get("updatedAt") or "", author=f"github:{author}" if author else None,
                          answerer=f"github:{answerer}" if answerer else None)


@dataclass
class Page:
    threads: list[PastDiscussion]
    skipped: dict[str, int]
    cursor: str | None  # after this page (None: GitHub gave none, the connection was empty)
    last: bool


GraphQLCall = Callable[[str, dict], Awaitable[dict]]


class DiscussionHistory:
    """Pages of a repository's discussions. ``call(query, variables)`` makes one GraphQL call (a personal token's,
    or the App's installation's: :func:`token_caller`); ``sleep`` waits (tests pass a recorder)."""

    def __init__(self, call: GraphQLCall, *, opt_out: str, page_size: int = PAGE_SIZE, max_attempts: int = 5,
                 max_wait_seconds: float = 3600.0, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.call, self.opt_out, self.page_size = call, opt_out, page_size
        self.max_attempts, self.max_wait_seconds, self.sleep = max_attempts, max_wait_seconds, sleep

    async def _page(self, variables: dict) -> dict:
        for attempt in range(1, self.max_attempts + 1):
            try:
                return await self.call(DISCUSSION_HISTORY, variables)
            except TransientError as error:
                if attempt == self.max_attempts:
                    raise
                wait = error.retry_after if error.retry_after is not None else (60.0 if error.secondary else 2.0 ** attempt)
                wait = min(wait, self.max_wait_seconds)
                log.warning("GitHub asked to wait (%s): retrying in %.0f s", error, wait)
                await self.sleep(wait)
        raise AssertionError("unreachable")

    async def pages(self, repository: str, after: str | None) -> AsyncIterator[Page]:
        owner, _, name = repository.partition("/")
        while True:
            data = await self._page({"owner": owner, "name": name, "first": self.page_size, "after": after})
            if data.get("repository") is None:
                raise PermanentError(f"no repository {repository} (or the token can't see it)")
            connection = data["repository"]["discussions"]
            threads, skipped = [], {"unanswered": 0, "opted out": 0}
            for node in connection.get("nodes") or []:
                found = answered_thread(node, self.opt_out)
                if isinstance(found, str):
                    skipped[found] += 1
                else:
                    threads.append(found)
            info = connection["pageInfo"]
            after = info.get("endCursor") or after
            yield Page(threads, skipped, info.get("endCursor"), not info.get("hasNextPage"))
            if not info.get("hasNextPage"):
                return
            await self._mind_the_limit(data.get("rateLimit") or {})

    async def _mind_the_limit(self, limit: dict) -> None:
        """Wait for the reset when too little of the hour's GraphQL points is left for the next page."""
        remaining, reset = limit.get("remaining"), limit.get("resetAt")
        if remaining is None or reset is None or remaining - (limit.get("cost") or 1) > RESERVE:
            return
        try:
            until = datetime.fromisoformat(str(reset).replace("Z", "+00:00")).timestamp() - time.time()
        except ValueError:
            return
        wait = min(max(until, 0.0) + 1.0, self.max_wait_seconds)
        log.warning("GitHub's GraphQL rate limit is low (%s left): waiting %.0f s for its reset", remaining, wait)
        await self.sleep(wait)


def token_caller(gh: GitHubAPI, endpoint: str) -> GraphQLCall:
    """GraphQL calls with a personal token (``FIRSTREPLY_GITHUB_TOKEN``) on gidgethub's client ``gh``."""
    return lambda query, variables: graphql(gh, endpoint, query, variables)

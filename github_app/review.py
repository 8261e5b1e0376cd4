"""The GitHub App's part of the engine's review pages (an :class:`engine.web.ReviewExtension`).

Beside an answer, the reply the App made from it (a draft waiting for a maintainer, or what was posted); in the
overview, how many posted replies their discussion's author accepted; and the answer page's "Post to GitHub"
action, which approves the draft (optionally corrected) so the App's workers post it. It needs only the App's
tables, so the review pages show drafts even when the workers run in another process (``firstreply github-app``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from engine.web import DraftConflict
from github_app.models import GitHubReply
from github_app.store import GitHubStore, ReplyConflict


class GitHubReview:
    name = "github"

    def __init__(self, store: GitHubStore, wake: Callable[[], None] | None = None) -> None:
        self.store = store
        self.wake = wake  # tells this process's workers a reply waits to be posted (they also poll)

    async def detail(self, answer_id: str) -> GitHubReply | None:
        return await self.store.reply_for_answer(answer_id)

    def summary(self, reply: GitHubReply) -> dict:
        return {"status": reply.status, "discussion_url": reply.discussion_url, "comment_url": reply.comment_url}

    async def overview(self, since: datetime) -> dict:
        return await self.store.reply_figures(since)

    async def post_draft(self, answer_id: str, by: str, body: str | None = None) -> dict | None:
        reply = await self.store.reply_for_answer(answer_id)
        if reply is None:
            return None
        try:
            approved = await self.store.approve_reply(reply.id, by, body)
        except ReplyConflict as conflict:
            raise DraftConflict(str(conflict)) from None
        if approved is None:
            return None
        if self.wake is not None:
            self.wake()
        return {"reply": reply.id}

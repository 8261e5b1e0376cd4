"""What each queued job does: answer a new discussion, reply to a mention, post an approved draft,
record an accepted answer, keep the installation tables.

A handler returns a one-line outcome, or raises :class:`TransientError` (the worker retries
later) or :class:`PermanentError` (the job fails with that reason). Posting is exactly-once:
a reply row per trigger is held by one job at a time, and before posting the handler looks on
GitHub for a reply it may have posted just before a crash (every reply carries a marker).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from engine.protocol import EngineError, EngineUnavailable, Question
from github_app import graphql, sansio
from github_app.api import GitHubClient, NotFound, PermanentError, TransientError
from github_app.config import AppConfig
from github_app.models import GitHubReply
from github_app.store import GitHubStore, Job

log = logging.getLogger(__name__)
SETTLED = {"posted", "draft", "approved", "abstained", "skipped"}  # nothing more for a first-reply job to do


#: Brings a knowledge base up to date with a repository after a push and says what it did in one line; raises
#: TransientError (the remote is unreachable: retried) or PermanentError (the URL is refused).
Reingest = Callable[[sansio.SourceUpdate], Awaitable[str]]


class Handlers:
    def __init__(self, config: AppConfig, store: GitHubStore, client: GitHubClient, answerer,
                 reingest: Reingest | None = None) -> None:
        self.config = config
        self.store = store
        self.client = client
        self.answerer = answerer
        self.reingest = reingest

    async def run(self, job: Job) -> str:
        handler = {
            "discussion_created": self.discussion_created,
            "mention": self.mention,
            "post_reply": self.post_reply,
            "discussion_answered": self.discussion_answered,
            "installation": self.installation,
            "installation_repositories": self.installation_repositories,
            "reingest": self.reingest_source,
        }.get(job.kind)
        if handler is None:
            raise PermanentError(f"unknown job kind {job.kind!r}")
        try:
            return await handler(job)
        except KeyError as error:
            raise PermanentError(f"the payload lacks {error}") from None
        except (TypeError, AttributeError, ValueError) as error:  # a value of the wrong shape: no retry will fix it
            raise PermanentError(f"malformed payload: {type(error).__name__}: {error}") from None

    async def reingest_source(self, job: Job) -> str:
        """A push to a bound repository: re-ingest its knowledge base (decided again from the settings now, so a
        source unbound since the delivery is left alone)."""
        update = sansio.source_update(job.payload, self.config.sources)
        if isinstance(update, str):
            return f"skipped: {update}"
        if self.reingest is None:
            raise PermanentError("this process has no engine to ingest with: run the App inside `firstreply serve`")
        return await self.reingest(update)

    # -- helpers --------------------------------------------------------------------------------

    @staticmethod
    def _installation(payload: dict) -> int:
        installation = (payload.get("installation") or {}).get("id")
        if installation is None:
            raise PermanentError("the delivery names no installation (is the webhook an App's?)")
        return int(installation)

    async def _switched_off(self, payload: dict) -> str | None:
        """Why this delivery gets no reply, or None. Only installations and repositories the App knows are
        answered: recorded from installation events, or looked up once with the App's JWT (and then recorded)."""
        installation_id = self._installation(payload)
        installation = await self.store.installation(installation_id)
        if installation is None:
            found = await self.client.app_installation(installation_id)
            if found is None:
                log.warning("a delivery names installation %s, which the App does not know (GitHub: 404): not answered",
                            installation_id)
                return f"installation {installation_id} is unknown to the App"
            await self.store.save_installation(found, suspended=bool(found.get("suspended_at")))
            log.info("installation %s (%s) looked up on GitHub and recorded", installation_id,
                     (found.get("account") or {}).get("login"))
            installation = await self.store.installation(installation_id)
        if installation is not None and (installation.suspended or installation.removed):
            return "the installation is suspended or removed"
        hook = payload["repository"]
        repository = await self.store.repository(int(hook["id"]))
        if repository is None or repository.installation_id != installation_id:
            found = await self.client.repository_installation(str(hook.get("full_name") or ""))
            if found is None or int(found.get("id", -1)) != installation_id:
                log.warning("a delivery names repository %s under installation %s, which the App has not recorded "
                            "there (GitHub: %s): not answered", hook.get("full_name"), installation_id,
                            "not installed" if found is None else f"installation {found.get('id')}")
                return f"repository {hook.get('full_name')} is not one of installation {installation_id}'s"
            await self.store.save_repositories(installation_id, [hook])
            repository = await self.store.repository(int(hook["id"]))
        if repository is not None and (not repository.enabled or repository.removed):
            return f"replies are switched off for {repository.full_name}"
        return None

    async def _hold(self, trigger_id: str, job: Job, **fields) -> GitHubReply:
        reply = await self.store.hold_reply(trigger_id, job.id, self.config.lease_seconds, **fields)
        if reply is None:
            raise TransientError(f"another job is working on {trigger_id}", retry_after=self.config.lease_seconds / 4)
        return reply

    async def _ask(self, question: Question):
        try:
            return await self.answerer.answer(question)
        except (EngineUnavailable, EngineError, OSError) as error:
            raise TransientError(f"engine: {error}") from None

    async def _post(self, reply: GitHubReply, body: str) -> str:
        """Post the reply (with variables, never text in the query) and record it; returns the outcome.

        Every body carries the trigger's marker (a maintainer's rewrite gets it here), so a retry after
        GitHub created the comment but answered with an error finds it instead of posting again.
        """
        body = sansio.with_marker(body, reply.trigger_id)
        if body != reply.body:  # store what is sent before sending it: a retry looks for exactly this
            await self.store.update_reply(reply.trigger_id, body=body)
        variables = {"discussionId": reply.discussion_id, "body": body}
        if reply.reply_to_id:
            variables["replyToId"] = reply.reply_to_id
        assert reply.installation_id is not None
        data = await self.client.graphql(reply.installation_id, graphql.ADD_COMMENT, input=variables)
        comment = ((data or {}).get("addDiscussionComment") or {}).get("comment") or {}
        if not comment.get("id"):
            raise PermanentError(f"addDiscussionComment returned no comment: {data}")
        await self.store.update_reply(reply.trigger_id, status="posted", body=body, comment_id=comment["id"],
                                      comment_url=comment.get("url"), release=True)
        log.info("posted reply to %s: %s", reply.trigger_id, comment.get("url"))
        return f"posted {comment.get('url') or comment['id']}"

    async def _found(self, reply: GitHubReply, comments: list[dict]) -> str | None:
        """If the App's reply is already on GitHub (posted before a crash), record it and say so."""
        existing = sansio.has_reply(comments, reply.trigger_id, self.config.slug)
        if existing is None:
            return None
        await self.store.update_reply(reply.trigger_id, status="posted", comment_id=existing["id"], release=True)
        return f"already posted as {existing['id']} (found on GitHub)"

    async def _gone(self, reply: GitHubReply, what: str, error: NotFound) -> str:
        """Deleted on GitHub before the job ran (GraphQL ``NOT_FOUND``): a skip, not a failure."""
        await self.store.update_reply(reply.trigger_id, status="skipped", release=True)
        log.info("%s for %s no longer exists: %s", what, reply.trigger_id, error)
        return f"skipped: {what} no longer exists ({error})"

    async def _thread(self, reply: GitHubReply) -> list[dict]:
        """The comments where this reply would be: the discussion's top level, or a comment's thread."""
        assert reply.installation_id is not None
        if reply.kind == "first":
            owner, _, name = reply.repository.partition("/")
            data = await self.client.graphql(reply.installation_id, graphql.DISCUSSION, owner=owner, name=name,
                                             number=reply.discussion_number)
            node = ((data or {}).get("repository") or {}).get("discussion")
            return (node or {}).get("comments", {}).get("nodes") or []
        data = await self.client.graphql(reply.installation_id, graphql.THREAD_REPLIES, id=reply.reply_to_id)
        return ((data or {}).get("node") or {}).get("replies", {}).get("nodes") or []

    async def _deliver(self, reply: GitHubReply, answer, category: tuple[str, str]) -> str:
        """Turn an answer into the reply: nothing (abstained, silent), a draft (review mode), or a post."""
        policy = self.config.policy
        if answer.abstained and policy.abstain == "silent" and reply.kind == "first":
            await self.store.update_reply(reply.trigger_id, status="abstained", answer_id=answer.id, release=True)
            return "abstained: low confidence, nothing posted"
        body = (sansio.abstain_note(policy, reply.trigger_id) if answer.abstained
                else sansio.format_reply(answer, policy, reply.trigger_id))
        if policy.reviews_category(*category):
            await self.store.update_reply(reply.trigger_id, status="draft", body=body, answer_id=answer.id, release=True)
            return "drafted for review"
        await self.store.update_reply(reply.trigger_id, status="ready", body=body, answer_id=answer.id)
        return await self._post(reply, body)

    # -- jobs ------------------------------------------------------------------------------------

    async def discussion_created(self, job: Job) -> str:
        payload = job.payload
        if (off := await self._switched_off(payload)) is not None:
            return f"skipped: {off}"
        repo, hook = payload["repository"], payload["discussion"]
        reply = await self._hold(hook["node_id"], job, kind="first", discussion_id=hook["node_id"],
                                 repository=repo["full_name"], installation_id=self._installation(payload),
                                 discussion_number=hook["number"], discussion_url=hook.get("html_url"))
        try:
            if reply.status in SETTLED:
                return f"nothing to do: the reply is {reply.status}"
            owner, name = repo["full_name"].split("/", 1)
            data = await self.client.graphql(reply.installation_id, graphql.DISCUSSION, owner=owner, name=name,
                                             number=hook["number"])
            node = ((data or {}).get("repository") or {}).get("discussion")
            if node is None:
                await self.store.update_reply(reply.trigger_id, status="skipped", release=True)
                return "skipped: the discussion no longer exists"
            if (found := await self._found(reply, node["comments"]["nodes"])) is not None:
                return found
            if reply.status == "ready" and reply.body:  # answered before a crash: post that, don't answer again
                return await self._post(reply, reply.body)
            discussion = sansio.Discussion.from_graphql(node)
            ok, why = sansio.should_answer(discussion, self.config.policy, self.config.slug)
            if not ok:
                await self.store.update_reply(reply.trigger_id, status="skipped", release=True)
                return f"skipped: {why}"
            author = discussion.author_login or "ghost"
            answer = await self._ask(Question(
                sansio.question_text(discussion.title, discussion.body, self.config.policy), channel="github",
                conversation_id=discussion.id, user_id=f"github:{author}", title=discussion.title,
                link=discussion.url or None, request_id=f"github-{job.delivery_id}"))
            return await self._deliver(reply, answer, (discussion.category_slug, discussion.category_name))
        except NotFound as gone:
            return await self._gone(reply, "the discussion", gone)
        finally:
            await self.store.update_reply(reply.trigger_id, release=True)

    async def mention(self, job: Job) -> str:
        payload = job.payload
        if (off := await self._switched_off(payload)) is not None:
            return f"skipped: {off}"
        repo, hook, discussion = payload["repository"], payload["comment"], payload["discussion"]
        installation = self._installation(payload)
        reply = await self._hold(hook["node_id"], job, kind="mention", discussion_id=discussion["node_id"],
                                 repository=repo["full_name"], installation_id=installation,
                                 discussion_number=discussion.get("number"), discussion_url=discussion.get("html_url"))
        try:
            if reply.status in SETTLED:
                return f"nothing to do: the reply is {reply.status}"
            data = await self.client.graphql(installation, graphql.COMMENT, id=hook["node_id"])
            node = (data or {}).get("node")
            if not node:
                await self.store.update_reply(reply.trigger_id, status="skipped", release=True)
                return "skipped: the comment no longer exists"
            thread = node.get("replyTo") or node  # GitHub threads are one level deep: reply to the top comment
            if reply.reply_to_id != thread["id"]:
                await self.store.update_reply(reply.trigger_id, reply_to_id=thread["id"])
                reply.reply_to_id = thread["id"]
            if (found := await self._found(reply, thread["replies"]["nodes"])) is not None:
                return found
            if reply.status == "ready" and reply.body:
                return await self._post(reply, reply.body)
            where = node["discussion"]
            if where.get("locked"):
                await self.store.update_reply(reply.trigger_id, status="skipped", release=True)
                return "skipped: the discussion is locked"
            author = (node.get("author") or {}).get("login") or "ghost"
            text = sansio.strip_mention(node.get("body") or "", self.config.slug) or where.get("title") or ""
            answer = await self._ask(Question(text, channel="github", conversation_id=where["id"],
                                              user_id=f"github:{author}", title=where.get("title"),
                                              link=node.get("url") or None, request_id=f"github-{job.delivery_id}"))
            category = where.get("category") or {}
            return await self._deliver(reply, answer, (category.get("slug") or "", category.get("name") or ""))
        except NotFound as gone:
            return await self._gone(reply, "the comment or its discussion", gone)
        finally:
            await self.store.update_reply(reply.trigger_id, release=True)

    async def post_reply(self, job: Job) -> str:
        """Post a draft a maintainer approved."""
        draft = await self.store.reply_by_id(int(job.payload["reply_id"]))
        if draft is None:
            raise PermanentError(f"no reply {job.payload['reply_id']}")
        reply = await self._hold(draft.trigger_id, job)
        try:
            if reply.status == "posted":
                return "nothing to do: already posted"
            if reply.status != "approved" or not reply.body:
                raise PermanentError(f"reply {reply.id} is {reply.status}, not approved")
            if (found := await self._found(reply, await self._thread(reply))) is not None:
                return found
            return await self._post(reply, reply.body)
        except NotFound as gone:
            return await self._gone(reply, "the discussion", gone)
        finally:
            await self.store.update_reply(reply.trigger_id, release=True)

    async def discussion_answered(self, job: Job) -> str:
        chosen = job.payload.get("answer") or {}
        reply = await self.store.accept(chosen.get("node_id") or "")
        if reply is None:
            return "the chosen answer is not one of the App's replies"
        return f"accepted: the App's reply {reply.comment_id} (answer {reply.answer_id}) was chosen as the answer"

    async def installation(self, job: Job) -> str:
        payload, action = job.payload, job.action
        installation = payload["installation"]
        suspended = {"suspend": True, "unsuspend": False}.get(action or "")
        await self.store.save_installation(installation, suspended=suspended, removed=action == "deleted")
        repositories = payload.get("repositories") or []
        if action == "deleted":
            return f"installation {installation['id']} removed"
        if repositories:
            await self.store.save_repositories(int(installation["id"]), repositories)
        return f"installation {installation['id']} {action}: {len(repositories)} repositories recorded"

    async def installation_repositories(self, job: Job) -> str:
        payload = job.payload
        installation = payload["installation"]
        await self.store.save_installation(installation)
        added = await self.store.save_repositories(int(installation["id"]), payload.get("repositories_added") or [])
        removed = await self.store.save_repositories(int(installation["id"]), payload.get("repositories_removed") or [],
                                                     removed=True)
        return f"installation {installation['id']}: {added} repositories added, {removed} removed"

"""``ReviewService``: what maintainers do with the answer log, whoever asks (the review pages, the
``/api/v1`` routes, the CLI).

It reads and judges answers, keeps the golden records (each change indexed at once, so searches see
it), posts the drafts a frontend keeps for review (its :class:`engine.web.ReviewExtension`), and keeps
the maintainers, their sessions and the audit trail. Its dependencies are given, never looked up: the
store with the queries, the function that indexes the golden records as they are now, the extensions; and for
the community's imported history (``firstreply history import``), its store and the function that indexes the past
answers still waiting for review (accepting one makes it a golden record, rejecting one hides it).
Everything it refuses is a :class:`~engine.review.errors.ReviewError`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from engine.protocol import AnsweredThread
from engine.review.errors import ReviewConflict, ReviewError
from engine.store.history import HistoryStore
from engine.store.models import AnswerRecord, AuditEvent, GoldenRecord, Maintainer, PastThread
from engine.store.review import AnswerFilter, ReviewStore

if TYPE_CHECKING:
    from engine.web import ReviewExtension


#: The longest reason a maintainer may give for a correction or a rejection, in characters.
MAX_REASON_CHARS = 2000

class ReviewService:
    def __init__(self, store: ReviewStore, *, index_golden: Callable[[], Awaitable[object]],
                 extensions: Sequence[ReviewExtension] = (), quote: Callable[[str], str] = str, history: HistoryStore | None = None,
                 index_past: Callable[[], Awaitable[object]] | None = None) -> None:
        """``index_golden``: brings the index in line with the golden records (run after each change to them);
        ``extensions``: the frontends' parts of the review (a live list: one registered later takes part);
        ``quote``: how an approved answer's text becomes a golden record's (the engine strips its [n] markers)."""
        self.store = store
        self._index_golden = index_golden
        self.extensions = extensions
        self._quote = quote
        self.history = history
        self._index_past = index_past

    # -- the answer log -----------------------------------------------------------------------------

    async def answers(self, selected: AnswerFilter) -> tuple[list[AnswerRecord], bool]:
        """One page of answers matching the filter, and whether another page follows."""
        return await self.store.answers(selected)

    async def detail(self, answer_id: str) -> dict[str, Any] | None:
        """An answer with its conversation, votes, golden record and each extension's part (None: no such answer)."""
        return await self.store.detail(answer_id)

    async def knowledge_bases(self) -> list[str]:
        return await self.store.knowledge_bases()

    async def overview(self, days: int = 30, kb: str | None = None) -> dict[str, Any]:
        return await self.store.overview(days, kb)

    async def review(self, answer_id: str, verdict: str, by: str, *, text: str | None = None,
                     reason: str | None = None) -> tuple[AnswerRecord, GoldenRecord | None]:
        """Approve, correct or reject an answer; approved and corrected ones are retrieved from then on.
        Raises :class:`~engine.review.errors.ReviewNotFound` for an unknown answer."""
        if reason is not None and len(reason) > MAX_REASON_CHARS:  # the API, the pages and the CLI alike
            raise ReviewError(f"the reason is at most {MAX_REASON_CHARS} characters")
        record, golden = await self.store.review(answer_id, verdict, by, text=text, reason=reason, quote=self._quote)
        await self._index_golden()
        return record, golden

    async def post_draft(self, answer_id: str, by: str, body: str | None = None) -> dict[str, Any] | None:
        """Approve the draft a frontend made for this answer (the GitHub App in review mode), which then posts it;
        what was approved (the audit detail), or None when no extension has a draft for this answer. Raises
        :class:`~engine.review.errors.ReviewConflict` when the draft is no longer waiting."""
        from engine.web import DraftConflict

        for extension in self.extensions:
            try:
                posted = await extension.post_draft(answer_id, by, body)
            except DraftConflict as conflict:  # approved meanwhile (another maintainer, the API), or posted
                raise ReviewConflict(str(conflict)) from None
            if posted is not None:
                await self.store.audit(by, f"{extension.name}.post", answer_id, posted)
                return posted
        return None

    # -- golden records (each change is indexed before the call returns) ---------------------------

    async def golden_records(self, text: str | None = None, page: int = 1,
                             per_page: int = 50) -> tuple[list[GoldenRecord], bool]:
        return await self.store.golden_records(text, page, per_page)

    async def all_golden_records(self) -> list[GoldenRecord]:
        return await self.store.all_golden_records()

    async def golden_record(self, record_id: int) -> GoldenRecord | None:
        return await self.store.golden_record(record_id)

    async def add_golden_record(self, question: str, answer: str, by: str, source: str = "manual") -> GoldenRecord:
        record = await self.store.add_golden_record(question, answer, by, source)
        await self._index_golden()
        return record

    async def update_golden_record(self, record_id: int, question: str, answer: str, by: str) -> GoldenRecord | None:
        """The record as saved, or None when there is no such record."""
        record = await self.store.update_golden_record(record_id, question, answer, by)
        if record is not None:
            await self._index_golden()
        return record

    async def delete_golden_record(self, record_id: int, by: str) -> bool:
        deleted = await self.store.delete_golden_record(record_id, by)
        if deleted:
            await self._index_golden()
        return deleted

    async def import_golden_csv(self, text: str, by: str) -> dict[str, Any]:
        """Add the question/answer pairs of a CSV text: ``{"added": n, "skipped": [{"line", "reason"}, …]}``."""
        result = await self.store.import_golden_csv(text, by)
        await self._index_golden()
        return result

    async def export_golden(self, fmt: str) -> str:
        """Every golden record as ``jsonl`` or ``csv`` (another format: :class:`~engine.review.errors.ReviewError`)."""
        return ReviewStore.export_golden(await self.store.all_golden_records(), fmt)

    # -- the community's answered history: past threads, candidate golden records -----------------------

    def _history(self) -> HistoryStore:
        if self.history is None:
            raise RuntimeError("this review service was built without the history store")
        return self.history

    async def _reindex_past(self) -> None:
        if self._index_past is not None:
            await self._index_past()

    async def history_cursor(self, source: str) -> str | None:
        """Where the last import of ``source`` (``github:OWNER/NAME``, ``discord:CHANNEL``) stopped."""
        return await self._history().cursor(source)

    async def save_history_page(self, source: str, threads: list[AnsweredThread], cursor: str | None) -> dict[str, int]:
        """Store a page of answered threads with the cursor after it (one transaction); not yet indexed:
        call :meth:`index_past_answers` once the import is done."""
        return await self._history().save_page(source, threads, cursor)

    async def index_past_answers(self) -> None:
        await self._reindex_past()

    async def past_threads(self, status: str | None = "candidate", page: int = 1,
                           per_page: int = 50) -> tuple[list[PastThread], bool]:
        return await self._history().threads(status, page, per_page)

    async def past_thread(self, thread_id: int) -> PastThread | None:
        return await self._history().thread(thread_id)

    async def accept_past_thread(self, thread_id: int, by: str) -> tuple[PastThread, GoldenRecord]:
        """A candidate becomes a golden record (searched as one from now on, no longer as a past answer)."""
        thread, golden = await self._history().accept(thread_id, by)
        await self._index_golden()
        await self._reindex_past()
        return thread, golden

    async def reject_past_thread(self, thread_id: int, by: str) -> PastThread:
        """A candidate is hidden: no longer searched, nor listed with the candidates."""
        thread = await self._history().reject(thread_id, by)
        await self._reindex_past()
        return thread

    # -- maintainers, their sessions, the audit trail ------------------------------------------------

    async def add_maintainer(self, name: str) -> str:
        """Create a maintainer and return their sign-in token (shown once; only its hash is kept)."""
        return await self.store.add_maintainer(name)

    async def remove_maintainer(self, name: str) -> bool:
        return await self.store.remove_maintainer(name)

    async def maintainers(self) -> list[Maintainer]:
        return await self.store.maintainers()

    async def maintainer_for(self, token: str) -> str | None:
        """The maintainer a sign-in token belongs to, or None."""
        return await self.store.maintainer_for(token)

    async def open_session(self, name: str) -> str | None:
        """A new page session for a maintainer (its token), or None when there is no such maintainer."""
        return await self.store.open_session(name)

    async def session_maintainer(self, token: str) -> str | None:
        return await self.store.session_maintainer(token)

    async def end_session(self, token: str) -> None:
        await self.store.end_session(token)

    async def audit(self, actor: str, action: str, target: str | None = None, detail: dict[str, Any] | None = None) -> None:
        await self.store.audit(actor, action, target, detail)

    async def audit_events(self, limit: int = 50) -> list[AuditEvent]:
        return await self.store.audit_events(limit)

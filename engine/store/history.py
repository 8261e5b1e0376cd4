"""The community's answered history in the store: past threads (candidate golden records) and where each
source's import got to.

A page of threads is saved together with the cursor that follows it, in one transaction, so an import
stopped part-way resumes after the last page it stored, and a page stored twice changes nothing.
"""

from __future__ import annotations

from typing import Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from engine.protocol import AnsweredThread
from engine.review.errors import ReviewError, ReviewNotFound
from engine.store.database import sessions
from engine.store.models import AuditEvent, GoldenRecord, HistoryCursor, PastThread, utcnow
from engine.store.review import MAX_IMPORT_FIELD
from engine.store.text import text_problem

STATUSES = ("candidate", "accepted", "rejected")


def _clean(text: str) -> str:
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    if text_problem(text):  # a NUL or a lone surrogate can't be stored (PostgreSQL refuses it): drop those
        text = "".join(c for c in text if c != "\x00" and not 0xD800 <= ord(c) <= 0xDFFF)
    return text[:MAX_IMPORT_FIELD]


class HistoryStore:
    def __init__(self, engine: AsyncEngine, pseudonym: Callable[[str | None], str | None]) -> None:
        """``pseudonym``: a person's id -> the salted hash kept instead (the engine's, as for votes and answers)."""
        self.session = sessions(engine)
        self.pseudonym = pseudonym

    async def cursor(self, source: str) -> str | None:
        async with self.session() as session:
            row = await session.get(HistoryCursor, source)
            return row.cursor if row else None

    async def save_page(self, source: str, threads: list[AnsweredThread], cursor: str | None) -> dict[str, int]:
        """Store a page of threads and the cursor after it; ``{"new", "updated", "unchanged"}`` counts.

        A thread seen before is replaced when its ``updated_at`` moved (its review status is kept: a rejected
        thread stays hidden, an accepted one keeps its golden record, which the maintainers own)."""
        counts = {"new": 0, "updated": 0, "unchanged": 0}
        async with self.session.begin() as session:
            for thread in threads:
                row = (await session.execute(select(PastThread).where(
                    PastThread.source == source, PastThread.thread_id == thread.thread_id))).scalar_one_or_none()
                fields = dict(url=thread.url[:500], title=_clean(thread.title)[:300], question=_clean(thread.question),
                              answer=_clean(thread.answer), answer_kind=thread.answer_kind,
                              thread_updated_at=thread.updated_at[:40], author_hash=self.pseudonym(thread.author),
                              answerer_hash=self.pseudonym(thread.answerer))
                if row is None:
                    session.add(PastThread(source=source, thread_id=thread.thread_id, status="candidate", **fields))
                    counts["new"] += 1
                elif row.thread_updated_at != fields["thread_updated_at"] or row.answer != fields["answer"]:
                    for name, value in fields.items():
                        setattr(row, name, value)
                    counts["updated"] += 1
                else:
                    counts["unchanged"] += 1
            if cursor is not None:
                cursor_row = await session.get(HistoryCursor, source)
                if cursor_row is None:
                    session.add(HistoryCursor(source=source, cursor=cursor))
                else:
                    cursor_row.cursor, cursor_row.updated_at = cursor, utcnow()
        return counts

    async def threads(self, status: str | None = "candidate", page: int = 1,
                      per_page: int = 50) -> tuple[list[PastThread], bool]:
        """One page of past threads with this status (all with None), newest import first."""
        if status is not None and status not in STATUSES:
            raise ReviewError(f"the status must be one of {', '.join(STATUSES)}")
        query = select(PastThread).order_by(PastThread.updated_at.desc(), PastThread.id.desc())
        if status is not None:
            query = query.where(PastThread.status == status)
        async with self.session() as session:
            rows = list((await session.execute(query.offset((page - 1) * per_page).limit(per_page + 1))).scalars())
        return rows[:per_page], len(rows) > per_page

    async def searchable(self) -> list[PastThread]:
        """The threads searched as past answers: the candidates (accepted ones are searched as golden records)."""
        async with self.session() as session:
            return list((await session.execute(
                select(PastThread).where(PastThread.status == "candidate").order_by(PastThread.id))).scalars())

    async def thread(self, thread_id: int) -> PastThread | None:
        async with self.session() as session:
            return await session.get(PastThread, thread_id)

    async def accept(self, thread_id: int, by: str) -> tuple[PastThread, GoldenRecord]:
        """A candidate becomes a golden record (its question: the title and the question's text)."""
        async with self.session.begin() as session:
            row = await session.get(PastThread, thread_id)
            if row is None:
                raise ReviewNotFound(f"no such past thread: {thread_id}")
            if row.status != "candidate":
                raise ReviewError(f"this thread was already {row.status}")
            question = f"{row.title}\n\n{row.question}".strip() if row.question else row.title
            golden = GoldenRecord(question=question[:MAX_IMPORT_FIELD], answer=row.answer, source="history", created_by=by,
                                  updated_by=by)
            session.add(golden)
            await session.flush()
            row.status, row.golden_record_id, row.reviewed_by = "accepted", golden.id, by
            session.add(AuditEvent(actor=by, action="history.accept", target=str(row.id),
                                   detail={"golden_record": golden.id, "url": row.url}))
            return row, golden

    async def reject(self, thread_id: int, by: str) -> PastThread:
        """A candidate is hidden: no longer searched nor listed among the candidates."""
        async with self.session.begin() as session:
            row = await session.get(PastThread, thread_id)
            if row is None:
                raise ReviewNotFound(f"no such past thread: {thread_id}")
            if row.status != "candidate":
                raise ReviewError(f"this thread was already {row.status}")
            row.status, row.reviewed_by = "rejected", by
            session.add(AuditEvent(actor=by, action="history.reject", target=str(row.id), detail={"url": row.url}))
            return row

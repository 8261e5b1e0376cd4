"""Reading and judging the answer log: filters, one answer in full, verdicts, golden records,
maintainers and their audit trail, and the overview's figures.

Everything is a query or a short transaction on the engine's database; the same code serves
the review pages, the ``/api/v1`` routes and the CLI.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable, Sequence

from sqlalchemy import ColumnElement, Date, Integer, cast, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from engine.review.errors import ReviewError, ReviewNotFound
from engine.store.database import rowcount, sessions
from engine.store.models import (
    AnswerRecord,
    AuditEvent,
    Feedback,
    GoldenRecord,
    Maintainer,
    MaintainerSession,
    Turn,
    utcnow,
)
from engine.store.text import text_problem

if TYPE_CHECKING:
    from engine.web import ReviewExtension

VERDICTS = ("unreviewed", "approved", "corrected", "rejected")
SESSION_LIFETIME = timedelta(days=7)
MAX_IMPORT_FIELD = 20_000


@dataclass(frozen=True)
class AnswerFilter:
    channel: str | None = None
    verdict: str | None = None
    votes: str | None = None  # down | up | none
    abstained: bool | None = None
    accepted: bool | None = None
    text: str | None = None
    kb: str | None = None  # one knowledge base's answers
    order: str = "down"  # down (👎 first, then newest) | newest
    page: int = 1
    per_page: int = 50


def token_digest(token: str) -> str:
    # surrogatepass: a header with bytes that aren't UTF-8 is only a wrong token, never an error
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _every_day(since: datetime, days: int, counted: dict[str, tuple[int, int]]) -> list[dict[str, Any]]:
    """One entry per day of the window, days without questions included (a chart needs the gaps)."""
    first = since.date() + timedelta(days=1)
    out = []
    for offset in range(days):
        day = str(first + timedelta(days=offset))
        questions, abstained = counted.get(day, (0, 0))
        out.append({"day": day, "questions": questions, "abstained": abstained})
    return out


class ReviewStore:
    def __init__(self, engine: AsyncEngine, extensions: Sequence[ReviewExtension] = ()) -> None:
        self.engine = engine
        self.session = sessions(engine)
        #: Frontends' parts of the review (``engine.web.ReviewExtension``), e.g. the GitHub App's drafts.
        self.extensions = extensions

    # -- the answer log ---------------------------------------------------------------------------

    async def answers(self, f: AnswerFilter) -> tuple[list[AnswerRecord], bool]:
        """One page of answers matching the filter, and whether another page follows."""
        query = select(AnswerRecord)
        if f.channel:
            query = query.where(AnswerRecord.channel == f.channel)
        if f.kb is not None:
            query = query.where(AnswerRecord.kb == f.kb)
        if f.verdict:
            query = query.where(AnswerRecord.verdict == f.verdict)
        if f.votes == "down":
            query = query.where(AnswerRecord.down_votes > 0)
        elif f.votes == "up":
            query = query.where(AnswerRecord.up_votes > 0)
        elif f.votes == "none":
            query = query.where(AnswerRecord.up_votes == 0, AnswerRecord.down_votes == 0)
        if f.abstained is not None:
            query = query.where(AnswerRecord.abstained.is_(f.abstained))
        if f.accepted is not None:
            query = query.where(AnswerRecord.accepted_at.isnot(None) if f.accepted else AnswerRecord.accepted_at.is_(None))
        if f.text:
            pattern = "%" + f.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = query.where(or_(AnswerRecord.question.ilike(pattern, escape="\\"),
                                    AnswerRecord.text.ilike(pattern, escape="\\")))
        order: list[ColumnElement[Any]] = [AnswerRecord.created_at.desc(), AnswerRecord.id.desc()]
        if f.order == "down":
            order.insert(0, AnswerRecord.down_votes.desc())
        query = query.order_by(*order).offset((f.page - 1) * f.per_page).limit(f.per_page + 1)
        async with self.session() as session:
            rows = list((await session.execute(query)).scalars())
        return rows[: f.per_page], len(rows) > f.per_page

    async def detail(self, answer_id: str) -> dict[str, Any] | None:
        """An answer with everything a reviewer needs: its conversation, votes, golden record, and each review
        extension's part under its name (the GitHub App's reply: ``"github"``)."""
        async with self.session() as session:
            record = await session.get(AnswerRecord, answer_id)
            if record is None:
                return None
            turns = []
            if record.conversation_id:
                turns = list((await session.execute(
                    select(Turn).where(Turn.conversation_id == record.conversation_id).order_by(Turn.id)
                )).scalars())
            votes = list((await session.execute(
                select(Feedback).where(Feedback.answer_id == answer_id).order_by(Feedback.updated_at.desc())
            )).scalars())
            golden = (await session.execute(select(GoldenRecord).where(GoldenRecord.answer_id == answer_id))).scalar_one_or_none()
        detail = {"record": record, "turns": turns, "votes": votes, "golden": golden}
        for extension in self.extensions:
            detail[extension.name] = await extension.detail(answer_id)
        return detail

    async def review(self, answer_id: str, verdict: str, by: str, *, text: str | None = None,
                     reason: str | None = None, quote: Callable[[str], str] = str) -> tuple[AnswerRecord, GoldenRecord | None]:
        """Approve, correct (with the corrected text, kept beside the original) or reject an answer.

        Approved and corrected answers become golden records, their text passed through ``quote`` first (the
        engine strips the answer's [n] markers: quoted later, they would point at other sources); rejecting
        removes the answer's one.
        """
        if verdict not in ("approved", "corrected", "rejected"):
            raise ReviewError("the verdict must be approved, corrected or rejected")
        if verdict == "corrected" and not (text and text.strip()):
            raise ReviewError("a correction needs the corrected text")
        if verdict == "rejected" and not (reason and reason.strip()):
            raise ReviewError("say why the answer is rejected")
        async with self.session.begin() as session:
            record = await session.get(AnswerRecord, answer_id)
            if record is None:
                raise ReviewNotFound(f"no such answer: {answer_id}")
            if verdict == "approved" and record.abstained:
                raise ReviewError("an abstention has no answer to approve: correct it with the right answer instead")
            record.verdict, record.reviewed_by, record.reviewed_at = verdict, by, utcnow()
            record.corrected_text = text.strip() if verdict == "corrected" and text else None
            record.review_note = reason.strip() if verdict == "rejected" and reason else None
            golden = (await session.execute(select(GoldenRecord).where(GoldenRecord.answer_id == answer_id))).scalar_one_or_none()
            if verdict == "rejected":
                if golden is not None:
                    await session.delete(golden)
                golden = None
            else:
                answer = quote(record.corrected_text or record.text).strip()
                if golden is None:
                    golden = GoldenRecord(question=record.question, answer=answer, source="review", answer_id=answer_id,
                                          created_by=by, updated_by=by)
                    session.add(golden)
                else:
                    golden.answer, golden.updated_by, golden.updated_at = answer, by, utcnow()
            session.add(AuditEvent(actor=by, action=f"answer.{verdict}", target=answer_id,
                                   detail={"reason": record.review_note} if record.review_note else {}))
            await session.flush()
            return record, golden

    # -- golden records -------------------------------------------------------------------------------

    async def golden_records(self, text: str | None = None, page: int = 1, per_page: int = 50) -> tuple[list[GoldenRecord], bool]:
        query = select(GoldenRecord).order_by(GoldenRecord.updated_at.desc(), GoldenRecord.id.desc())
        if text:
            pattern = f"%{text}%"
            query = query.where(or_(GoldenRecord.question.ilike(pattern), GoldenRecord.answer.ilike(pattern)))
        async with self.session() as session:
            rows = list((await session.execute(query.offset((page - 1) * per_page).limit(per_page + 1))).scalars())
        return rows[:per_page], len(rows) > per_page

    async def all_golden_records(self) -> list[GoldenRecord]:
        async with self.session() as session:
            return list((await session.execute(select(GoldenRecord).order_by(GoldenRecord.id))).scalars())

    async def golden_record(self, record_id: int) -> GoldenRecord | None:
        async with self.session() as session:
            return await session.get(GoldenRecord, record_id)

    @staticmethod
    def _check_pair(question: str, answer: str) -> tuple[str, str]:
        # A browser's textarea sends CRLF line ends; store one newline style (and keep the newlines).
        question, answer = (question or "").replace("\r\n", "\n").replace("\r", "\n").strip(), \
            (answer or "").replace("\r\n", "\n").replace("\r", "\n").strip()
        if not question or not answer:
            raise ReviewError("a golden record needs a question and an answer")
        if len(question) > MAX_IMPORT_FIELD or len(answer) > MAX_IMPORT_FIELD:
            raise ReviewError(f"questions and answers are at most {MAX_IMPORT_FIELD} characters")
        if problem := text_problem(question) or text_problem(answer):
            raise ReviewError(f"a golden record's text {problem}")
        return question, answer

    async def add_golden_record(self, question: str, answer: str, by: str, source: str = "manual") -> GoldenRecord:
        question, answer = self._check_pair(question, answer)
        async with self.session.begin() as session:
            record = GoldenRecord(question=question, answer=answer, source=source, created_by=by, updated_by=by)
            session.add(record)
            await session.flush()
            session.add(AuditEvent(actor=by, action="golden.add", target=str(record.id), detail={}))
            return record

    async def update_golden_record(self, record_id: int, question: str, answer: str, by: str) -> GoldenRecord | None:
        question, answer = self._check_pair(question, answer)
        async with self.session.begin() as session:
            record = await session.get(GoldenRecord, record_id)
            if record is None:
                return None
            record.question, record.answer, record.updated_by, record.updated_at = question, answer, by, utcnow()
            session.add(AuditEvent(actor=by, action="golden.edit", target=str(record_id), detail={}))
            return record

    async def delete_golden_record(self, record_id: int, by: str) -> bool:
        async with self.session.begin() as session:
            deleted = await session.execute(delete(GoldenRecord).where(GoldenRecord.id == record_id))
            if rowcount(deleted):
                session.add(AuditEvent(actor=by, action="golden.delete", target=str(record_id), detail={}))
            return bool(rowcount(deleted))

    async def import_golden_csv(self, text: str, by: str) -> dict[str, Any]:
        """Add question/answer pairs from CSV (a header row naming ``question`` and ``answer``).

        Rows without both, and pairs already present, are skipped and reported; nothing is half-imported.
        """
        try:
            rows = csv.DictReader(io.StringIO(text, newline=""))  # newline="": quoted fields keep their line breaks
            fields = {(name or "").strip().lower(): name for name in (rows.fieldnames or [])}
            if "question" not in fields or "answer" not in fields:
                raise ReviewError("the CSV needs a header row with 'question' and 'answer' columns")
            numbered = list(enumerate(rows, start=2))
        except csv.Error as error:  # e.g. a field longer than the csv module takes
            raise ReviewError(f"the CSV can't be read: {error}") from None
        existing = {(r.question.strip(), r.answer.strip()) for r in await self.all_golden_records()}
        added, skipped = [], []
        for line, row in numbered:
            try:
                pair = self._check_pair(row.get(fields["question"]) or "", row.get(fields["answer"]) or "")
            except ReviewError as error:
                skipped.append({"line": line, "reason": str(error)})
                continue
            if pair in existing:
                skipped.append({"line": line, "reason": "already a golden record"})
                continue
            existing.add(pair)
            added.append(pair)
        async with self.session.begin() as session:
            session.add_all(GoldenRecord(question=q, answer=a, source="import", created_by=by, updated_by=by) for q, a in added)
            session.add(AuditEvent(actor=by, action="golden.import", target=None,
                                   detail={"added": len(added), "skipped": len(skipped)}))
        return {"added": len(added), "skipped": skipped}

    @staticmethod
    def export_golden(records: list[GoldenRecord], fmt: str) -> str:
        rows = [{"id": r.id, "question": r.question, "answer": r.answer, "source": r.source, "answer_id": r.answer_id}
                for r in records]
        if fmt == "jsonl":
            return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        if fmt == "csv":
            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=["id", "question", "answer", "source", "answer_id"])
            writer.writeheader()
            writer.writerows(rows)
            return out.getvalue()
        raise ReviewError("the format must be jsonl or csv")

    # -- maintainers and the audit trail --------------------------------------------------------------

    async def add_maintainer(self, name: str) -> str:
        """Create a maintainer and return their sign-in token (shown once; only its hash is kept)."""
        name = name.strip()
        if not name or len(name) > 100:
            raise ReviewError("a maintainer needs a name of 1-100 characters")
        token = "frm_" + secrets.token_urlsafe(32)
        try:
            async with self.session.begin() as session:
                session.add(Maintainer(name=name, token_hash=token_digest(token)))
                session.add(AuditEvent(actor="cli", action="maintainer.add", target=name, detail={}))
        except IntegrityError:
            raise ReviewError(f"there is already a maintainer called {name!r}") from None
        return token

    async def remove_maintainer(self, name: str) -> bool:
        """Remove a maintainer; their token stops working and every session they have open ends."""
        async with self.session.begin() as session:
            await session.execute(delete(MaintainerSession).where(
                MaintainerSession.maintainer_id.in_(select(Maintainer.id).where(Maintainer.name == name))))
            removed = await session.execute(delete(Maintainer).where(Maintainer.name == name))
            if rowcount(removed):
                session.add(AuditEvent(actor="cli", action="maintainer.remove", target=name, detail={}))
            return bool(rowcount(removed))

    async def maintainers(self) -> list[Maintainer]:
        async with self.session() as session:
            return list((await session.execute(select(Maintainer).order_by(Maintainer.name))).scalars())

    async def maintainer_for(self, token: str) -> str | None:
        """The maintainer a token belongs to, or None."""
        async with self.session.begin() as session:
            row = (await session.execute(select(Maintainer).where(Maintainer.token_hash == token_digest(token)))).scalar_one_or_none()
            if row is None:
                return None
            row.last_seen_at = utcnow()
            return row.name

    async def open_session(self, name: str, lifetime: timedelta = SESSION_LIFETIME) -> str | None:
        """Sign a maintainer in on the web pages: a new session token for their cookie (only its hash is kept).

        None when there is no such maintainer, removed perhaps a moment after their token was checked
        (also when the removal commits between this look-up and the insert: the foreign key refuses it)."""
        token = secrets.token_urlsafe(32)
        try:
            async with self.session.begin() as session:
                maintainer = (await session.execute(select(Maintainer.id).where(Maintainer.name == name))).scalar_one_or_none()
                if maintainer is None:
                    return None
                session.add(MaintainerSession(token_hash=token_digest(token), maintainer_id=maintainer,
                                              expires_at=utcnow() + lifetime))
        except IntegrityError:
            return None
        return token

    async def session_maintainer(self, token: str) -> str | None:
        """Whose session this is: None once it ended, expired, or its maintainer was removed."""
        async with self.session() as session:
            row = (await session.execute(
                select(Maintainer.name).join(MaintainerSession, MaintainerSession.maintainer_id == Maintainer.id)
                .where(MaintainerSession.token_hash == token_digest(token), MaintainerSession.ended_at.is_(None),
                       MaintainerSession.expires_at > utcnow())
            )).scalar_one_or_none()
        return row

    async def end_session(self, token: str) -> None:
        async with self.session.begin() as session:
            await session.execute(update(MaintainerSession).where(MaintainerSession.token_hash == token_digest(token))
                                  .values(ended_at=utcnow()))

    async def audit(self, actor: str, action: str, target: str | None = None, detail: dict[str, Any] | None = None) -> None:
        async with self.session.begin() as session:
            session.add(AuditEvent(actor=actor, action=action, target=target, detail=detail or {}))

    async def audit_events(self, limit: int = 50) -> list[AuditEvent]:
        async with self.session() as session:
            return list((await session.execute(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit))).scalars())

    # -- the overview ---------------------------------------------------------------------------------

    async def knowledge_bases(self) -> list[str]:
        """The knowledge bases answers were logged against, for the pages' filter."""
        async with self.session() as session:
            return [kb for kb in (await session.execute(
                select(AnswerRecord.kb).distinct().order_by(AnswerRecord.kb))).scalars() if kb]

    async def overview(self, days: int = 30, kb: str | None = None) -> dict[str, Any]:
        """The last ``days`` days' figures, of one knowledge base's answers or of all of them."""
        since = datetime.now(timezone.utc) - timedelta(days=days)
        in_kb = [AnswerRecord.kb == kb] if kb is not None else []
        async with self.session() as session:
            dialect = self.engine.dialect.name
            day = func.date(AnswerRecord.created_at) if dialect == "sqlite" else cast(AnswerRecord.created_at, Date)
            per_day = (await session.execute(
                select(day.label("day"), func.count(), func.sum(cast(AnswerRecord.abstained, Integer)))
                .where(AnswerRecord.created_at >= since, *in_kb).group_by(day).order_by(day)
            )).all()
            totals = (await session.execute(select(
                func.count(), func.sum(cast(AnswerRecord.abstained, Integer)), func.sum(AnswerRecord.up_votes),
                func.sum(AnswerRecord.down_votes),
            ).where(AnswerRecord.created_at >= since, *in_kb))).one()
            cited = (await session.execute(select(AnswerRecord.citations).where(
                AnswerRecord.created_at >= since, AnswerRecord.abstained.is_(False), *in_kb
            ).order_by(AnswerRecord.created_at.desc()).limit(5000))).scalars()
            normalised = func.lower(func.trim(AnswerRecord.question))
            unanswered = (await session.execute(
                select(func.min(AnswerRecord.question), func.count().label("n")).where(
                    AnswerRecord.abstained.is_(True), AnswerRecord.created_at >= since, *in_kb)
                .group_by(normalised).order_by(func.count().desc(), func.min(AnswerRecord.question)).limit(10)
            )).all()
            verdicts = dict((await session.execute(
                select(AnswerRecord.verdict, func.count()).where(AnswerRecord.created_at >= since, *in_kb)
                .group_by(AnswerRecord.verdict)
            )).all())
        sources: Counter[str] = Counter()
        titles: dict[str, str] = {}
        for citations in cited:
            pages = set()  # one page counts once per answer, however many of its sections were cited
            for citation in citations or []:
                key = (citation.get("url") or citation.get("path", "")).split("#", 1)[0]  # the page, not the anchor
                if key and key not in pages:
                    pages.add(key)
                    sources[key] += 1
                    titles.setdefault(key, citation.get("title") or citation.get("path", key))
        total, abstained, up, down = totals[0] or 0, totals[1] or 0, totals[2] or 0, totals[3] or 0
        extensions = {extension.name: await extension.overview(since) for extension in self.extensions}
        return {
            "days": days,
            "per_day": _every_day(since, days, {str(d): (n, a or 0) for d, n, a in per_day}),
            "questions": total,
            "abstention_rate": abstained / total if total else 0.0,
            "votes": {"up": up, "down": down, "up_share": up / (up + down) if up + down else None},
            **extensions,  # e.g. "github": the App's replies posted and accepted (all knowledge bases)
            "verdicts": {v: verdicts.get(v, 0) for v in VERDICTS},
            "top_sources": [{"url": k, "title": titles[k], "citations": n} for k, n in sources.most_common(10)],
            "unanswered": [{"question": q, "times": n} for q, n in unanswered],
        }

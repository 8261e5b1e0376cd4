"""Reading and writing the engine's state: the answer log, conversation turns and votes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from engine.index.batching import MicroBatcher
from engine.store.database import create_engine, migrate, rowcount, sessions
from engine.store.models import (
    AnswerRecord,
    Base,
    ChannelSettings,
    Conversation,
    DiscordEscalation,
    DiscordThread,
    Feedback,
    Turn,
    utcnow,
)

if TYPE_CHECKING:  # the dialects' modules are imported when first used (below)
    from sqlalchemy.dialects.postgresql import Insert as PostgresInsert
    from sqlalchemy.dialects.sqlite import Insert as SqliteInsert


def _dialect_insert(dialect: str) -> Callable[[type[Base]], PostgresInsert | SqliteInsert]:
    """The dialect's own ``insert`` (it has ON CONFLICT), imported when first used: a cold ``firstreply ask`` on
    SQLite never loads PostgreSQL's dialect."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgres_insert

        return postgres_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


class UnknownAnswer(LookupError):
    """Feedback or a lookup named an answer id that was never logged."""


class ConversationConflict(ValueError):
    """A question named a conversation that belongs to another channel (a Discord thread asked about from
    the web, say): its turns are not this caller's to read or add to."""


@dataclass(frozen=True)
class HistoryTurn:
    role: str
    text: str
    tokens: int


class Store:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.session = sessions(engine)
        self._log = MicroBatcher(self._log_many, max_batch=64)

    @classmethod
    async def open(cls, url: str) -> "Store":
        engine = create_engine(url)
        await migrate(engine)
        return cls(engine)

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> None:
        async with self.session() as session:
            await session.execute(select(1))

    async def history(self, conversation_id: str, limit: int = 50, *, channel: str | None = None) -> list[HistoryTurn]:
        """The conversation's most recent turns, oldest first; with ``channel``, :class:`ConversationConflict`
        when the conversation was started on another channel."""
        async with self.session() as session:
            if channel is not None:
                owner = (await session.execute(
                    select(Conversation.channel).where(Conversation.id == conversation_id))).scalar_one_or_none()
                if owner is not None and owner != channel:
                    raise ConversationConflict(f"conversation {conversation_id!r} belongs to another channel")
            rows = (await session.execute(
                select(Turn.role, Turn.text, Turn.tokens).where(Turn.conversation_id == conversation_id)
                .order_by(Turn.id.desc()).limit(limit)
            )).all()
        return [HistoryTurn(r.role, r.text, r.tokens) for r in reversed(rows)]

    async def log_answer(self, record: AnswerRecord, turns: list[HistoryTurn]) -> None:
        """Store the answer and its question and answer turns; returns once they are committed.

        Concurrent calls are committed together in one transaction (group commit).
        """
        await self._log.submit((record, turns))

    async def _log_many(self, items: list[tuple[AnswerRecord, list[HistoryTurn]]]) -> list[None]:
        await self._write(items)  # if one record spoils the transaction, the batcher retries each alone
        return [None] * len(items)

    async def _write(self, items: list[tuple[AnswerRecord, list[HistoryTurn]]]) -> None:
        """Commit answers and their turns. Each conversation is created if new (a concurrent creation is no
        error), then locked (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite has one writer) and its channel
        checked again: the check in :meth:`history` ran before the answer was generated, and another channel
        may have started the conversation since. A turn is never added to another channel's conversation."""
        async with self.session.begin() as session:
            conversation_ids = {r.conversation_id: r.channel for r, _ in items if r.conversation_id}
            if conversation_ids:
                insert = _dialect_insert(self.engine.dialect.name)
                now = utcnow()
                await session.execute(insert(Conversation).values(
                    [{"id": cid, "channel": channel, "created_at": now, "updated_at": now}
                     for cid, channel in conversation_ids.items()]).on_conflict_do_nothing(index_elements=["id"]))
                owners = dict((await session.execute(
                    select(Conversation.id, Conversation.channel).where(Conversation.id.in_(conversation_ids))
                    .with_for_update()
                )).all())
                for record, _ in items:
                    if record.conversation_id and owners.get(record.conversation_id) != record.channel:
                        raise ConversationConflict(f"conversation {record.conversation_id!r} belongs to another channel")
                await session.execute(update(Conversation).where(Conversation.id.in_(conversation_ids))
                                      .values(updated_at=now))
            for record, turns in items:
                session.add(record)
                if record.conversation_id:
                    session.add_all(Turn(conversation_id=record.conversation_id, role=t.role, text=t.text,
                                         tokens=t.tokens, answer_id=record.id) for t in turns)

    async def answer(self, answer_id: str) -> AnswerRecord | None:
        async with self.session() as session:
            return await session.get(AnswerRecord, answer_id)

    async def count_answers(self) -> int:
        async with self.session() as session:
            return int((await session.execute(select(func.count()).select_from(AnswerRecord))).scalar_one())

    async def vote(self, answer_id: str, user_hash: str, vote: int, comment: str | None = None,
                   conversation_prefix: str | None = None) -> bool:
        """Record one user's vote on an answer; a second vote replaces the first. True if it was new.

        With ``conversation_prefix``, only an answer in a conversation whose id starts with it may be
        voted on; any other is :class:`UnknownAnswer` too (whether it exists is not for the caller to learn)."""
        async with self.session.begin() as session:
            record = await session.get(AnswerRecord, answer_id)
            if record is None or (conversation_prefix is not None
                                  and not (record.conversation_id or "").startswith(conversation_prefix)):
                raise UnknownAnswer(answer_id)
            existing = (await session.execute(
                select(Feedback).where(Feedback.answer_id == answer_id, Feedback.user_hash == user_hash).with_for_update()
            )).scalar_one_or_none()
            counts = {1: AnswerRecord.up_votes, -1: AnswerRecord.down_votes}
            if existing is None:
                session.add(Feedback(answer_id=answer_id, user_hash=user_hash, vote=vote, comment=comment))
                await session.execute(update(AnswerRecord).where(AnswerRecord.id == answer_id)
                                      .values({counts[vote]: counts[vote] + 1}))
                return True
            if existing.vote != vote:  # the counters follow the change of mind, atomically with it
                await session.execute(update(AnswerRecord).where(AnswerRecord.id == answer_id)
                                      .values({counts[vote]: counts[vote] + 1, counts[existing.vote]: counts[existing.vote] - 1}))
            existing.vote, existing.comment, existing.updated_at = vote, comment, utcnow()
            return False

    async def votes(self, answer_id: str) -> dict[str, int]:
        async with self.session() as session:
            rows = (await session.execute(
                select(Feedback.vote, func.count()).where(Feedback.answer_id == answer_id).group_by(Feedback.vote)
            )).all()
        counts = {vote: n for vote, n in rows}
        return {"up": counts.get(1, 0), "down": counts.get(-1, 0)}

    async def channel_settings(self, platform: str) -> dict[str, dict[str, bool | None]]:
        """Every channel's overrides on a platform: channel id -> {"help_channel", "thread_mode"} (None: default)."""
        async with self.session() as session:
            rows = (await session.execute(select(ChannelSettings).where(ChannelSettings.platform == platform))).scalars()
            return {r.channel_id: {"help_channel": r.help_channel, "thread_mode": r.thread_mode} for r in rows}

    async def set_channel_settings(self, platform: str, channel_id: str, changes: dict[str, bool | None],
                                   by: str | None = None) -> dict[str, bool | None]:
        async with self.session.begin() as session:
            row = await session.get(ChannelSettings, (platform, channel_id))
            if row is None:
                row = ChannelSettings(platform=platform, channel_id=channel_id)
                session.add(row)
            for name in ("help_channel", "thread_mode"):
                if name in changes:
                    setattr(row, name, changes[name])
            row.updated_by, row.updated_at = by, utcnow()
            return {"help_channel": row.help_channel, "thread_mode": row.thread_mode}

    # -- Discord threads ---------------------------------------------------------------------------

    async def _insert_if_absent(self, table: type[Base], **values: Any) -> bool:
        """Insert a row unless its primary key is taken; True if this call inserted it. One statement, so two
        processes racing for the same key can't both win (PostgreSQL and SQLite both say ON CONFLICT DO NOTHING)."""
        statement = _dialect_insert(self.engine.dialect.name)(table).values(**values).on_conflict_do_nothing()
        async with self.session.begin() as session:
            return rowcount(await session.execute(statement)) == 1

    async def mark_discord_thread_answered(self, thread_id: str) -> None:
        await self._insert_if_absent(DiscordThread, thread_id=thread_id, answered_at=utcnow())

    async def escalate_discord_thread(self, thread_id: str) -> bool:
        """Record that a maintainer was asked in this thread; True only for the first call, in any process."""
        return await self._insert_if_absent(DiscordEscalation, thread_id=thread_id, escalated_at=utcnow())

    async def discord_thread(self, thread_id: str) -> dict[str, bool]:
        async with self.session() as session:
            answered = await session.get(DiscordThread, thread_id) is not None
            escalated = await session.get(DiscordEscalation, thread_id) is not None
        return {"answered": answered, "escalated": escalated}

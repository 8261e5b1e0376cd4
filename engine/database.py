"""The engine's database kit: what a frontend that keeps its own tables in the engine's database needs.

A frontend (the GitHub App) declares its models on :data:`Base`, the engine's shared declarative metadata, so
one database and one ``firstreply migrate`` serve the engine and its frontends. It connects with
:func:`create_engine`, brings the schema up to date with :func:`migrate` (:class:`DatabaseError` says why it
can't), and opens short transactions with :func:`sessions`. :class:`MicroBatcher` lets many concurrent small
writes share one transaction (group commit). :func:`mark_answer_accepted` is the one write a frontend makes to
the engine's own tables: recording that a person chose an answer as the accepted one.

Everything else under ``engine.store`` is the engine's own business.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from engine.index.batching import MicroBatcher
from engine.store.database import DatabaseError, create_engine, migrate, safe_url, sessions
from engine.store.models import AnswerRecord, Base, utcnow

__all__ = ["Base", "DatabaseError", "MicroBatcher", "create_engine", "mark_answer_accepted", "metadata", "migrate",
           "safe_url", "sessions", "utcnow"]

#: The shared metadata every table of the engine and its frontends is declared on.
metadata = Base.metadata


async def mark_answer_accepted(session: AsyncSession, answer_id: str) -> None:
    """Record, in the caller's transaction, that the answer was chosen as the accepted one (the first time only)."""
    await session.execute(update(AnswerRecord).where(AnswerRecord.id == answer_id, AnswerRecord.accepted_at.is_(None))
                          .values(accepted_at=utcnow()))

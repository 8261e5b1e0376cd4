"""The answer protocol: the one thing frontends depend on (answers and votes, plus the status
and per-channel settings their admin commands show and change, and the Discord threads the bot
answered in or escalated, so every bot process and restart sees the same).

It is implemented twice, with identical behaviour: in process by :class:`engine.Engine`, and
over HTTP by :class:`engine.client.EngineClient`. Both raise :class:`UnknownAnswer` for
feedback on an answer that doesn't exist and ``ValueError`` for a bad vote or thread id.
"""

from __future__ import annotations

from typing import AsyncIterator, Protocol, runtime_checkable

from engine.answer.model import Answer, Citation, Question
from engine.client import EngineError, EngineUnavailable
from engine.store.repository import ConversationConflict, UnknownAnswer

__all__ = ["Answer", "Answerer", "Citation", "ConversationConflict", "EngineError", "EngineUnavailable", "Question",
           "UnknownAnswer"]


@runtime_checkable
class Answerer(Protocol):
    async def answer(self, question: Question) -> Answer: ...

    def answer_stream(self, question: Question) -> AsyncIterator[dict]: ...

    async def feedback(self, answer_id: str, user_id: str, vote: int, comment: str | None = None) -> bool: ...

    async def status(self) -> dict: ...

    async def channel_settings(self, platform: str) -> dict[str, dict]: ...

    async def set_channel_settings(self, platform: str, channel_id: str, changes: dict[str, bool | None],
                                   by: str | None = None) -> dict: ...

    async def discord_thread(self, thread_id: str) -> dict[str, bool]: ...

    async def mark_discord_thread_answered(self, thread_id: str) -> None: ...

    async def escalate_discord_thread(self, thread_id: str) -> bool: ...

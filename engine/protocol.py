"""The answer protocol: the one thing frontends depend on (answers and votes, plus the status
and per-channel settings their admin commands show and change, and the Discord threads the bot
answered in or escalated, so every bot process and restart sees the same).

It is implemented twice, with identical behaviour: in process by :class:`engine.Engine`, and
over HTTP by :class:`engine.client.EngineClient`. Both raise :class:`UnknownAnswer` for
feedback on an answer that doesn't exist and ``ValueError`` for a bad vote or thread id; the
client also raises :class:`EngineUnavailable` (the engine can't be reached or isn't ready) and
:class:`EngineError` (it refused the request).

Both have one lifecycle: ``start()`` before the first call, ``close()`` after the last, or
``async with answerer:`` for both; and ``metrics``, the :class:`engine.metrics.Metrics` a frontend
in the same process counts into (``None`` for a remote engine: the frontend keeps its own).

This module is the frontends' one import for all of it: the data (:class:`Question`,
:class:`Answer`, :class:`Citation`), the protocol, and its errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, AsyncIterator, Protocol, runtime_checkable

from engine.answer.model import Answer, Citation, Question
from engine.store.repository import ConversationConflict, UnknownAnswer

if TYPE_CHECKING:
    from engine.metrics import Metrics

__all__ = ["Answer", "Answerer", "Citation", "ConversationConflict", "EngineError", "EngineUnavailable", "Question",
           "UnknownAnswer"]


class EngineUnavailable(RuntimeError):
    """The engine could not be reached or is not ready."""


class EngineError(RuntimeError):
    """The engine answered with an error status (it refused the request)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"engine answered {status}: {message}")
        self.status = status


@runtime_checkable
class Answerer(Protocol):
    @property
    def metrics(self) -> Metrics | None: ...

    async def start(self) -> Answerer: ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> Answerer: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def answer(self, question: Question) -> Answer: ...

    def answer_stream(self, question: Question) -> AsyncIterator[dict[str, Any]]: ...

    async def feedback(self, answer_id: str, user_id: str, vote: int, comment: str | None = None) -> bool: ...

    async def status(self) -> dict[str, Any]: ...

    async def channel_settings(self, platform: str) -> dict[str, dict[str, bool | None]]: ...

    async def set_channel_settings(self, platform: str, channel_id: str, changes: dict[str, bool | None],
                                   by: str | None = None) -> dict[str, bool | None]: ...

    async def discord_thread(self, thread_id: str) -> dict[str, bool]: ...

    async def mark_discord_thread_answered(self, thread_id: str) -> None: ...

    async def escalate_discord_thread(self, thread_id: str) -> bool: ...

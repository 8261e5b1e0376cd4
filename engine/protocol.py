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
:class:`Answer`, :class:`Citation`), the protocol, its errors, and the limits both sides check
(:data:`MAX_QUESTION_CHARS`, :data:`MAX_COMMENT_CHARS`, :data:`MAX_ANSWER_CHARS`,
:data:`CHANNEL_SETTINGS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator, Mapping, Protocol, runtime_checkable

from engine.answer.model import Answer, Citation, Question
from engine.store.repository import ConversationConflict, UnknownAnswer

if TYPE_CHECKING:
    from engine.metrics import Metrics

__all__ = ["CHANNEL_SETTINGS", "MAX_ANSWER_CHARS", "MAX_COMMENT_CHARS", "MAX_QUESTION_CHARS", "Answer", "Answerer", "Citation", "ConversationConflict", "EngineError",
           "EngineUnavailable", "Question", "UnknownAnswer", "check_channel_settings"]

#: The longest question the engine takes, in characters: on /v1/answer, /v1/search, the Ask page, and what the
#: frontends cut a question to before they send it.
MAX_QUESTION_CHARS = 8000

#: The longest comment a vote may carry (:meth:`Answerer.feedback`), in characters.
MAX_COMMENT_CHARS = 2000

#: The longest answer text a maintainer may write (a corrected answer, a draft reply's corrected body), in
#: characters: it must still fit a GitHub comment (65,536) once the reply's furniture is added.
MAX_ANSWER_CHARS = 65_000

#: The per-channel settings a frontend may change with :meth:`Answerer.set_channel_settings` (``None``: back to
#: the frontend's configured default).
CHANNEL_SETTINGS = ("help_channel", "thread_mode")


def check_channel_settings(changes: Mapping[str, object]) -> None:
    """A ``ValueError`` naming them if ``changes`` holds anything but :data:`CHANNEL_SETTINGS`."""
    unknown = set(changes) - set(CHANNEL_SETTINGS)
    if unknown:
        raise ValueError(f"unknown channel settings: {', '.join(sorted(unknown))}")


@dataclass(frozen=True)
class AnsweredThread:
    """One answered thread of a community's history, as an importer (``github_app.history``) read it and the
    engine's history store keeps it. ``author`` and ``answerer`` are the people's ids on the source
    (``github:octocat``); the store keeps only their pseudonyms."""

    thread_id: str
    url: str
    title: str
    question: str
    answer: str
    answer_kind: str  # accepted | maintainers
    updated_at: str
    author: str | None = None
    answerer: str | None = None


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

"""The provider protocol: what every model behind firstreply can do, and how it fails.

A provider turns a :class:`GenerationRequest` (system instruction, the rendered prompt, and
the retrieved passages it was built from) into a :class:`Generation`, whole or streamed, and
counts tokens. Failures are :class:`ProviderError`; ``retryable`` says whether trying the same
call again may help (timeouts, 429, 5xx) and ``retry_after`` carries the server's hint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import AsyncIterator, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class ContextPassage:
    number: int
    title: str  # "Page title › heading"
    url: str
    text: str
    path: str = ""


@dataclass(frozen=True, slots=True)
class Message:
    role: str  # "user" | "assistant"
    text: str


@dataclass(frozen=True)
class GenerationRequest:
    system: str
    prompt: str  # the rendered user turn: context, history and question
    question: str = ""
    context: tuple[ContextPassage, ...] = ()
    max_output_tokens: int = 1024
    temperature: float = 0.2


@dataclass
class Generation:
    text: str
    model: str
    finish_reason: str = "stop"  # stop | max_tokens | blocked | other
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    blocked_reason: str | None = None

    @property
    def blocked(self) -> bool:
        return self.finish_reason == "blocked"


@dataclass(frozen=True)
class StreamEvent:
    """One piece of a streamed generation; the last one has ``done`` and the totals."""

    text: str = ""
    done: bool = False
    generation: Generation | None = None


class ProviderError(Exception):
    def __init__(self, message: str, *, provider: str, retryable: bool = False, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after

    def __str__(self) -> str:
        code = f" (HTTP {self.status})" if self.status else ""
        return f"{self.provider}{code}: {self.args[0]}"


@runtime_checkable
class Provider(Protocol):
    name: str  # e.g. "gemini:tunedModels/abc"
    context_window: int

    async def generate(self, request: GenerationRequest) -> Generation: ...

    def stream(self, request: GenerationRequest) -> AsyncIterator[StreamEvent]: ...

    async def count_tokens(self, text: str) -> int: ...

    def estimate_tokens(self, text: str) -> int: ...

    async def aclose(self) -> None: ...


def estimate_tokens(text: str) -> int:
    """A conservative local token estimate (about 3.5 characters per token for English and code)."""
    return max(1, int(len(text) / 3.5) + 1) if text else 0


@dataclass
class Attempt:
    provider: str
    error: str  # what went wrong, naming the provider once, e.g. "gemini:x (HTTP 503): ..."


@dataclass
class ChainResult:
    generation: Generation
    provider: str
    failures: list[Attempt] = field(default_factory=list)

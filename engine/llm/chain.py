"""The fallback chain: each provider in turn (with retries), the extractive answerer last.

An outage of one model never reaches the user as an error: the chain moves on, and the
result says which provider answered and why the ones before it did not.
"""

from __future__ import annotations

import functools
import logging
from typing import AsyncIterator, Callable

from engine.llm.base import Attempt, ChainResult, Generation, GenerationRequest, Provider, ProviderError, StreamEvent
from engine.llm.extractive import ExtractiveProvider
from engine.llm.retry import RetryPolicy, with_retries

log = logging.getLogger(__name__)


class ProviderChain:
    def __init__(self, providers: list[Provider], policy: RetryPolicy | None = None) -> None:
        if not providers or not isinstance(providers[-1], ExtractiveProvider):
            providers = [*providers, ExtractiveProvider()]
        self.providers = providers
        self.policy = policy or RetryPolicy()

    @property
    def primary(self) -> Provider:
        return self.providers[0]

    @property
    def has_llm(self) -> bool:
        return len(self.providers) > 1

    @property
    def language_models(self) -> list[Provider]:
        """The configured models, in order: every provider but the offline answerer that always ends the chain."""
        return self.providers[:-1]

    def _retrying(self, provider: Provider) -> Callable[[ProviderError, float], None]:
        def note(error: ProviderError, wait: float) -> None:
            log.warning("provider %s failed (%s); retrying in %.2f s", provider.name, error, wait)

        return note

    async def generate(self, request: GenerationRequest) -> ChainResult:
        failures: list[Attempt] = []
        for provider in self.providers:
            try:
                generation = await with_retries(functools.partial(provider.generate, request), self.policy, self._retrying(provider))
            except ProviderError as error:
                log.warning("provider %s gave up: %s", provider.name, error)
                failures.append(Attempt(provider.name, str(error)))
                continue
            if generation.blocked:
                failures.append(Attempt(provider.name, f"{provider.name}: blocked: {generation.blocked_reason}"))
                continue
            return ChainResult(generation, provider.name, failures)
        raise AssertionError("the extractive answerer never fails")  # pragma: no cover

    async def stream(self, request: GenerationRequest, failures: list[Attempt]) -> AsyncIterator[StreamEvent]:
        """Stream from the first provider that starts; fall back only before the first token.

        Once text has been sent, the answer is that provider's: cut off (blocked by a safety filter, an
        error, or a stream that just stops) it ends there, plainly; another provider would start the
        answer again after what the user already has."""
        for provider in self.providers:
            started = False
            try:
                async for event in provider.stream(request):
                    if event.done and event.generation and event.generation.blocked:
                        failures.append(Attempt(provider.name, f"{provider.name}: blocked: {event.generation.blocked_reason}"))
                        if started:
                            yield StreamEvent(done=True, generation=Generation("", provider.name, "blocked",
                                                                                blocked_reason=event.generation.blocked_reason))
                            return
                        break
                    started = started or bool(event.text)
                    yield event
                    if event.done:
                        return
                else:
                    if started:  # the stream stopped without its last event
                        failures.append(Attempt(provider.name, f"{provider.name}: the stream was cut off"))
                        yield StreamEvent(done=True, generation=Generation("", provider.name, "other"))
                        return
            except ProviderError as error:
                failures.append(Attempt(provider.name, str(error)))
                log.warning("provider %s failed while streaming: %s", provider.name, error)
                if started:  # the user already has part of this answer; end it plainly
                    yield StreamEvent(done=True, generation=Generation("", provider.name, "other"))
                    return

    async def aclose(self) -> None:
        for provider in self.providers:
            await provider.aclose()

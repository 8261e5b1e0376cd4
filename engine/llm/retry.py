"""Retries with jittered exponential backoff, honouring the server's Retry-After."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Awaitable, Callable, TypeVar

from engine.llm.base import ProviderError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    #: A Retry-After longer than this is not waited for: the next provider in the chain is tried.
    max_retry_after: float = 10.0

    def delay(self, attempt: int, error: ProviderError, rng: random.Random | None = None) -> float | None:
        """Seconds to wait before retry number ``attempt`` (1-based), or None to give up now."""
        if not error.retryable or attempt >= self.attempts:
            return None
        if error.retry_after is not None:
            return error.retry_after if error.retry_after <= self.max_retry_after else None
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return (rng or random).uniform(0, ceiling)  # "full jitter"


async def with_retries(call: Callable[[], Awaitable[T]], policy: RetryPolicy,
                       on_retry: Callable[[ProviderError, float], None] | None = None) -> T:
    attempt = 1
    while True:
        try:
            return await call()
        except ProviderError as error:
            wait = policy.delay(attempt, error)
            if wait is None:
                raise
            if on_retry:
                on_retry(error, wait)
            await asyncio.sleep(wait)
            attempt += 1


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is treated as unknown)."""
    if not value:
        return None
    try:
        return max(0.0, float(value.strip().removesuffix("s")))
    except ValueError:
        return None

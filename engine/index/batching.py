"""Micro-batching: concurrent calls to a batch function share one call, off the event loop.

It serves two kinds of work. On a CPU one query alone costs several times its share of a batch (a MiniLM forward pass
for one question is ~15 ms, in a batch of 16 ~3 ms each), and a vector store answers many
query vectors in one call for little more than one. Under load, calls that arrive while a
batch is running are gathered into the next one; a lone call waits for nothing but itself. The answer log uses it for group
commit: concurrent answers share one transaction, and each caller still returns only once
its own record is committed.

One caller's bad item must not cost the others their results: when a shared batch raises, it
is split in halves and each half run again, down to the items that fail alone (a batch of 32
with one bad item costs 11 calls, not 33), and only those fail. An outage is not a bad item:
when both halves fail just as the whole did (same error type and message) with an error that
is not about the data (not a ``ValueError``, ``TypeError`` or ``LookupError``: those a caller's
text can raise, two callers' alike), every item fails at once with it, after three calls.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Awaitable, Callable, Generic, Sequence, TypeVar, Union, cast

T = TypeVar("T")
R = TypeVar("R")
#: One result, or the exception it failed with, per item.
Outcomes = Sequence[Union[R, Exception]]


class MicroBatcher(Generic[T, R]):
    """``run_batch`` maps a list of items to a list of results (or of exceptions, one per failed item).

    A plain function runs in a worker thread; a coroutine function runs on the loop.
    """

    def __init__(self, run_batch: Callable[[list[T]], Outcomes[R] | Awaitable[Outcomes[R]]], max_batch: int = 32) -> None:
        self.run_batch = run_batch
        self.max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._draining: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._draining is None or self._draining.done():
            self._draining = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # let calls that arrived in the same loop turn join
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            results = await self._settle([item for item, _ in batch])
            for (_, future), result in zip(batch, results, strict=True):  # one result per item
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def _settle(self, items: list[T], failed: Exception | None = None) -> Outcomes[R]:
        """One result or exception per item: the batch at once, or, when it raises, its halves in turn."""
        if failed is None:
            try:
                return await self._run(items)
            except Exception as error:
                failed = error
        if len(items) == 1:
            return [failed]
        middle = len(items) // 2
        halves: list[Outcomes[R] | Exception] = []
        for half in (items[:middle], items[middle:]):
            try:
                halves.append(await self._run(half))
            except Exception as error:
                halves.append(error)
        if all(isinstance(h, Exception) and _same_failure(h, failed) for h in halves) and not _about_the_data(failed):
            return [failed] * len(items)  # an outage: everything fails alike, so stop asking
        results: list[R | Exception] = []
        for half, outcome in zip((items[:middle], items[middle:]), halves, strict=True):
            results.extend(await self._settle(half, outcome) if isinstance(outcome, Exception) else outcome)
        return results

    async def _run(self, items: list[T]) -> Outcomes[R]:
        # iscoroutinefunction tells which of the two kinds run_batch is; it does not narrow the type for mypy.
        if inspect.iscoroutinefunction(self.run_batch):
            return await cast(Awaitable[Outcomes[R]], self.run_batch(items))
        run_batch = cast(Callable[[list[T]], Outcomes[R]], self.run_batch)
        return await asyncio.to_thread(run_batch, items)


def _same_failure(one: Exception, other: Exception) -> bool:
    return type(one) is type(other) and str(one) == str(other)


def _about_the_data(error: Exception) -> bool:
    """An error a caller's item can cause (bad text, a wrong type, a missing key), never a sign of an outage."""
    return isinstance(error, (ValueError, TypeError, LookupError))

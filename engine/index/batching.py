"""Micro-batching: concurrent calls to a batch function share one call, off the event loop.

It serves two kinds of work. On a CPU one query alone costs several times its share of a batch (a MiniLM forward pass
for one question is ~15 ms, in a batch of 16 ~3 ms each), and a vector store answers many
query vectors in one call for little more than one. Under load, calls that arrive while a
batch is running are gathered into the next one; a lone call waits for nothing but itself. The answer log uses it for group
commit: concurrent answers share one transaction, and each caller still returns only once
its own record is committed.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Awaitable, Callable, Generic, TypeVar, Union

T = TypeVar("T")
R = TypeVar("R")


class MicroBatcher(Generic[T, R]):
    """``run_batch`` maps a list of items to a list of results (or of exceptions, one per failed item).

    A plain function runs in a worker thread; a coroutine function runs on the loop.
    """

    def __init__(self, run_batch: Callable[[list[T]], Union[list[R], Awaitable[list[R]]]], max_batch: int = 32) -> None:
        self.run_batch = run_batch
        self.max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future]] = []
        self._draining: asyncio.Task | None = None

    async def submit(self, item: T) -> R:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._draining is None or self._draining.done():
            self._draining = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # let calls that arrived in the same loop turn join
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            items = [item for item, _ in batch]
            try:
                if inspect.iscoroutinefunction(self.run_batch):
                    results = await self.run_batch(items)
                else:
                    results = await asyncio.to_thread(self.run_batch, items)
            except Exception as error:  # every caller hears about it; the batcher keeps going
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), result in zip(batch, results):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)

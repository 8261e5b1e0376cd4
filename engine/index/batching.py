"""Micro-batching: concurrent calls to a batch function share one call, off the event loop.

It serves two kinds of work. On a CPU one query alone costs several times its share of a batch (a MiniLM forward pass
for one question is ~15 ms, in a batch of 16 ~3 ms each), and a vector store answers many
query vectors in one call for little more than one. Under load, calls that arrive while a
batch is running are gathered into the next one; a lone call waits for nothing but itself. The answer log uses it for group
commit: concurrent answers share one transaction, and each caller still returns only once
its own record is committed.

One caller's bad item must not cost the others their results: when a shared batch raises,
each of its items is run again alone, and only the items that fail alone fail.
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
            try:
                results = await self._run([item for item, _ in batch])
            except Exception as error:
                if len(batch) == 1:
                    results = [error]
                else:  # find the item that spoiled the batch: each one again, alone
                    results = []
                    for item, _ in batch:
                        try:
                            results.extend(await self._run([item]))
                        except Exception as alone:
                            results.append(alone)
            for (_, future), result in zip(batch, results):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def _run(self, items: list[T]) -> list:
        if inspect.iscoroutinefunction(self.run_batch):
            return await self.run_batch(items)
        return await asyncio.to_thread(self.run_batch, items)

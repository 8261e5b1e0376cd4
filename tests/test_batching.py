"""Micro-batching of queries and group commit of the answer log."""

import asyncio
import threading

import pytest

from engine.index.batching import MicroBatcher
from engine.store.models import AnswerRecord
from engine.store.repository import HistoryTurn, Store


async def test_concurrent_calls_share_batches_and_get_their_own_results():
    batches = []
    release = threading.Event()

    def double(items):
        batches.append(list(items))
        release.wait(5)  # hold the first batch so the rest pile up behind it
        return [i * 2 for i in items]

    batcher = MicroBatcher(double, max_batch=8)
    first = asyncio.create_task(batcher.submit(0))
    await asyncio.sleep(0.05)
    rest = [asyncio.create_task(batcher.submit(i)) for i in range(1, 11)]
    await asyncio.sleep(0.05)
    release.set()
    assert await first == 0
    assert [await t for t in rest] == [i * 2 for i in range(1, 11)]
    assert batches == [[0], list(range(1, 9)), [9, 10]]


async def test_a_failing_batch_fails_its_callers_and_the_batcher_recovers():
    calls = []

    def flaky(items):
        calls.append(items)
        if len(calls) == 1:
            raise RuntimeError("model fell over")
        return items

    batcher = MicroBatcher(flaky)
    with pytest.raises(RuntimeError, match="fell over"):
        await batcher.submit("a")
    assert await batcher.submit("b") == "b"


async def test_per_item_errors_reach_only_their_caller():
    async def check(items):
        return [ValueError(f"bad {i}") if i < 0 else i for i in items]

    batcher = MicroBatcher(check)
    results = await asyncio.gather(batcher.submit(1), batcher.submit(-1), batcher.submit(2), return_exceptions=True)
    assert results[0] == 1 and results[2] == 2 and isinstance(results[1], ValueError)


def record(answer_id: str, conversation: str | None = None) -> AnswerRecord:
    return AnswerRecord(id=answer_id, channel="api", conversation_id=conversation, user_hash=None, kb="kb", question="q",
                        search_query="q", text="a", abstained=False, confidence=0.5, sources=[], citations=[],
                        model="extractive", fallback_reasons=[], prompt_tokens=1, output_tokens=1, latency_ms=1, trimmed={})


async def test_group_commit_logs_every_answer_and_isolates_a_bad_one(tmp_path):
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path}/log.db")
    try:
        turns = [HistoryTurn("user", "q", 1), HistoryTurn("assistant", "a", 1)]
        await store.log_answer(record("dup"), [])
        results = await asyncio.gather(
            *(store.log_answer(record(f"a{i}", conversation="c1" if i % 2 else None), turns) for i in range(30)),
            store.log_answer(record("dup"), []),  # a primary-key clash in the middle of the batch
            return_exceptions=True,
        )
        assert results[:30] == [None] * 30
        assert isinstance(results[30], Exception)
        assert await store.count_answers() == 31
        assert len(await store.history("c1", limit=100)) == 30  # 15 answers in c1, two turns each
    finally:
        await store.close()


async def test_when_a_shared_batch_fails_each_item_is_retried_alone_and_only_the_bad_one_fails():
    calls = []

    def strict(items):
        calls.append(list(items))
        if any(i < 0 for i in items):
            raise ValueError("a negative item spoils the whole batch")
        return [i * 10 for i in items]

    batcher = MicroBatcher(strict)
    results = await asyncio.gather(*[batcher.submit(i) for i in (1, 2, -3, 4)], return_exceptions=True)
    assert results[:2] == [10, 20] and results[3] == 40
    assert isinstance(results[2], ValueError)
    assert calls[0] == [1, 2, -3, 4] and sorted(map(tuple, calls[1:])) == [(-3,), (1,), (2,), (4,)]

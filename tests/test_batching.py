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


async def test_when_a_shared_batch_fails_it_is_bisected_and_only_the_bad_item_fails():
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
    assert calls == [[1, 2, -3, 4], [1, 2], [-3, 4], [-3], [4]]  # halves, not every item alone


async def test_one_bad_item_in_a_full_batch_costs_a_logarithmic_number_of_calls():
    calls = []

    def strict(items):
        calls.append(len(items))
        if 17 in items:
            raise ValueError("17 is cursed")
        return items

    batcher = MicroBatcher(strict, max_batch=32)
    results = await asyncio.gather(*[batcher.submit(i) for i in range(32)], return_exceptions=True)
    assert [r for r in results if not isinstance(r, Exception)] == [i for i in range(32) if i != 17]
    assert isinstance(results[17], ValueError)
    assert len(calls) == 11  # 1 + 2 per level of halving (32 -> 1); one by one it was 33


async def test_an_outage_fails_every_item_at_once_instead_of_trying_each():
    calls = []

    def down(items):
        calls.append(len(items))
        raise ConnectionError("the vector store is not answering")

    batcher = MicroBatcher(down, max_batch=32)
    results = await asyncio.gather(*[batcher.submit(i) for i in range(32)], return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert calls == [32, 16, 16]  # the whole batch, then both halves failing alike: an outage


async def test_two_callers_bad_items_alike_do_not_pass_for_an_outage():
    """Two questions with the same bad text, one in each half, fail alike; the rest must still get answers."""

    def strict(items):
        if any(i < 0 for i in items):
            raise ValueError("surrogates not allowed")
        return items

    batcher = MicroBatcher(strict, max_batch=8)
    results = await asyncio.gather(*[batcher.submit(i) for i in (-1, 1, 2, 3, -1, 5, 6, 7)], return_exceptions=True)
    assert [isinstance(r, ValueError) for r in results] == [True, False, False, False, True, False, False, False]

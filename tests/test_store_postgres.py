"""The same store code on a real PostgreSQL server (127.0.0.1:5432), in a database of its own."""

import asyncio

import pytest

from engine.store.database import DatabaseError, create_engine, migrate
from engine.store.models import AnswerRecord
from engine.store.repository import HistoryTurn, Store


def record(answer_id: str, conversation: str | None = "thread-1") -> AnswerRecord:
    return AnswerRecord(id=answer_id, channel="discord", conversation_id=conversation, user_hash="u", kb="kb",
                        question="q?", search_query="q?", text="a [1]", abstained=False, confidence=0.5,
                        sources=[{"path": "docs/a.md", "dense": 0.5}], citations=[], model="extractive",
                        fallback_reasons=[], prompt_tokens=10, output_tokens=3, latency_ms=12, trimmed={})


async def test_migrations_answers_turns_and_votes_on_postgresql(postgres_url):
    store = await Store.open(postgres_url)
    try:
        await store.log_answer(record("a1"), [HistoryTurn("user", "q?", 2), HistoryTurn("assistant", "a [1]", 3)])
        await store.log_answer(record("a2"), [HistoryTurn("user", "again?", 2), HistoryTurn("assistant", "yes", 1)])
        assert [t.text for t in await store.history("thread-1")] == ["q?", "a [1]", "again?", "yes"]
        assert [t.text for t in await store.history("thread-1", limit=2)] == ["again?", "yes"]
        assert (await store.answer("a1")).sources == [{"path": "docs/a.md", "dense": 0.5}]
        assert await store.vote("a1", "user-1", 1) is True
        assert await store.vote("a1", "user-1", -1) is False
        assert await store.votes("a1") == {"up": 0, "down": 1}
        assert await store.count_answers() == 2
    finally:
        await store.close()


async def test_concurrent_starts_migrate_once(postgres_url):
    stores = await asyncio.gather(*(Store.open(postgres_url) for _ in range(4)))
    for store in stores:
        await store.ping()
        await store.close()


async def test_unreachable_database_is_a_clear_error_without_the_password():
    engine = create_engine("postgresql://firstreply:s3cret@127.0.0.1:9/none")
    with pytest.raises(DatabaseError) as raised:
        await migrate(engine)
    assert "127.0.0.1:9" in str(raised.value) and "s3cret" not in str(raised.value)
    await engine.dispose()


async def test_the_github_queue_on_postgresql_gives_each_job_to_one_worker_in_key_order(postgres_url):
    from github_app.store import GitHubStore

    database = create_engine(postgres_url)
    await migrate(database)
    store = GitHubStore(database)
    try:
        for n in range(40):
            assert await store.enqueue(f"d-{n}", "discussion", "created", "discussion_created", {"n": n}, key=f"k{n % 4}")
        assert await store.enqueue("d-0", "discussion", "created", "discussion_created", {}) is None  # redelivery
        taken: list[tuple[str, int]] = []

        async def worker(name: str) -> None:
            while (job := await store.claim(name, lease_seconds=30)) is not None:
                taken.append((name, job.payload["n"]))
                await asyncio.sleep(0)  # let the other workers race for the same rows
                assert await store.finish(job.id, name, "ok")

        await asyncio.gather(*(worker(f"w{i}") for i in range(8)))
        numbers = [n for _, n in taken]
        assert sorted(numbers) == list(range(40))  # every job once, none twice
        for key in range(4):  # one key's jobs ran in the order they arrived
            in_key = [n for n in numbers if n % 4 == key]
            assert in_key == sorted(in_key)
        assert len({name for name, _ in taken}) > 1
    finally:
        await database.dispose()


async def test_a_reply_is_held_by_one_job_until_released_or_its_lease_ends_on_postgresql(postgres_url):
    from github_app.store import GitHubStore

    database = create_engine(postgres_url)
    await migrate(database)
    store = GitHubStore(database)
    fields = dict(kind="first", discussion_id="D_1", repository="o/r", installation_id=1, discussion_number=1)
    try:
        held = await asyncio.gather(*(store.hold_reply("D_1", job, 30, **fields) for job in range(1, 7)))
        assert sum(r is not None for r in held) == 1  # six jobs at once: one holder
        holder = next(r.owner_job for r in held if r is not None)
        assert await store.hold_reply("D_1", holder + 100, 30) is None
        await store.update_reply("D_1", release=True)
        assert (await store.hold_reply("D_1", 99, 0.2)).owner_job == 99
        await asyncio.sleep(0.3)  # the holder died: its lease runs out
        assert (await store.hold_reply("D_1", 100, 30)).owner_job == 100
    finally:
        await database.dispose()
